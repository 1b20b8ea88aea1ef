"""A Gradium STT request served by any :class:`~speechbridge.stt.STTProvider`.

The client's audio is decoded (:mod:`.audio_in`) and streamed to the backend as 16-bit PCM at its own rate. The
backend's events become Gradium messages: each recognised word is one ``text`` (its start) and one ``end_text`` (its
end), sent once ``delay_in_frames`` frames of audio have followed it, as Gradium's model waits for lookahead, or
at once when the backend makes it final (a flush, the end of a turn, the end of the stream). Interim words are never
taken back: when a backend revises a word already sent, the revision is lost. Voice activity becomes one ``step``
per 80 ms (:mod:`.vad`). A ``flush`` makes the backend finish its words, which are sent before ``flushed``;
``end_of_stream`` drains everything, then ``end_of_stream`` is sent.

``ready.sample_rate`` is the input's rate (24000 for bare ``pcm``, and for containers, whose rate is only known once
their header arrives). ``json_config.language`` goes to the backend when it takes a ``language`` option; ``temp`` and
``padding_bonus`` are validated and have no effect.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from speechbridge.audio import AudioFormat
from speechbridge.errors import ConfigError
from speechbridge.events import Flushed, StreamEnded, Transcript, VADUpdate, Word
from speechbridge.settings import settings_fields
from speechbridge.stt import STTProvider, STTStream
from speechbridge.turns import TurnCompletion

from ..protocol import (
    FRAME_S,
    AudioIn,
    ClientMessage,
    EndOfStreamIn,
    FlushIn,
    Setup,
    TextIn,
    server_end_of_stream,
    server_end_text,
    server_flushed,
    server_stt_ready,
    server_text,
)
from ..settings import GradiumSTTSettings
from .audio_in import InputDecoder
from .failures import POLICY, RequestError
from .requests import Channel, Request
from .vad import InactivityModel

__all__ = ["DEFAULT_DELAY_IN_FRAMES", "STTRequest", "WordRelease", "read_stt_config"]

DEFAULT_DELAY_IN_FRAMES: Final = 10
MODEL_RATE: Final = 24000  # reported as ready.sample_rate while a container's own rate is not known yet
STT_CONFIG_KEYS: Final = ("language", "delay_in_frames", "temp", "padding_bonus")


def read_stt_config(json_config: dict[str, Any]) -> GradiumSTTSettings:
    """The transcription settings of a setup: known keys validated, unknown keys ignored (as Gradium does)."""
    values = {key: json_config[key] for key in STT_CONFIG_KEYS if key in json_config}
    if "delay_in_tokens" in json_config and "delay_in_frames" not in values:
        values["delay_in_frames"] = json_config["delay_in_tokens"]
    try:
        return GradiumSTTSettings(**values)
    except ConfigError as error:
        raise RequestError(POLICY, f"invalid json_config: {error.message}") from None


def _spread(transcript: Transcript, now_s: float) -> tuple[Word, ...]:
    """Words with times for a transcript that has none: its span shared out evenly."""
    texts = transcript.text.split()
    if not texts:
        return ()
    start = transcript.start_s if transcript.start_s is not None else 0.0
    end = transcript.end_s if transcript.end_s is not None else max(start, now_s)
    step = (end - start) / len(texts)
    return tuple(Word(text, start + i * step, start + (i + 1) * step) for i, text in enumerate(texts))


class WordRelease:
    """Decides when the words of a backend's transcripts go out: ``delay_s`` after they end, or when final."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._sent = 0  # words of the current utterance already sent
        self._interim: tuple[Word, ...] = ()

    def transcript(self, transcript: Transcript, now_s: float) -> list[Word]:
        words = transcript.words or _spread(transcript, now_s)
        if transcript.is_final:
            fresh = list(words[self._sent :])
            self._sent, self._interim = 0, ()
            return fresh
        self._interim = words
        return self.ripe(now_s)

    def ripe(self, now_s: float) -> list[Word]:
        """Interim words that ``delay_s`` of audio has followed."""
        fresh = []
        for word in self._interim[self._sent :]:
            if word.end_s > now_s - self.delay_s + 1e-9:
                break
            fresh.append(word)
        self._sent += len(fresh)
        return fresh

    def rest(self) -> list[Word]:
        """Every interim word not sent yet (a flush or the end)."""
        fresh = list(self._interim[self._sent :])
        self._sent += len(fresh)
        return fresh


class STTRequest(Request):
    """Recognition for one setup."""

    def __init__(
        self, channel: Channel, setup: Setup, backend: STTProvider[Any], completion: TurnCompletion | None = None
    ) -> None:
        super().__init__(channel, setup)
        self.backend = backend
        self.language: str | None = None
        self.delay_in_frames = DEFAULT_DELAY_IN_FRAMES
        self.decoder: InputDecoder
        self.stream: STTStream | None = None
        self.audio_s = 0.0
        self.vad = InactivityModel(completion)
        self.words = WordRelease(self.delay_in_frames * FRAME_S)
        self._heard_s = 0.0
        self._flush_ids: deque[Any] = deque()
        self._measure_vad = not backend.capabilities.vad

    async def _open(self) -> None:
        config = read_stt_config(dict(self.setup.json_config))
        self.language = config.language
        self.delay_in_frames = config.delay_in_frames or DEFAULT_DELAY_IN_FRAMES
        self.words = WordRelease(self.delay_in_frames * FRAME_S)
        self.decoder = InputDecoder(self.setup.input_format or "wav")
        if self.decoder.sample_rate is not None:
            await self._open_backend(self.decoder.sample_rate)
        rate = self.decoder.sample_rate or MODEL_RATE
        await self.emit(server_stt_ready(self.request_id, self.setup.model_name, rate, self.delay_in_frames))

    async def _open_backend(self, sample_rate: int) -> None:
        options: dict[str, Any] = {}
        if self.language is not None and "language" in settings_fields(self.backend.Settings):
            options["language"] = self.language
        try:
            stream = self.backend.stream(format=AudioFormat.pcm16(sample_rate), **options)
        except ConfigError as error:
            raise RequestError(POLICY, f"the backend cannot take this setup: {error.message}") from None
        self.stream = stream
        await stream.open()
        self.spawn(self._consume, stream)

    async def _handle(self, message: ClientMessage) -> None:
        if isinstance(message, AudioIn):
            await self._feed(self.decoder.push(message.audio))
        elif isinstance(message, FlushIn):
            await self._feed(self.decoder.flush())
            self._flush_ids.append(message.flush_id)
            if self.stream is None:
                await self.emit(server_flushed(self._flush_ids.popleft()))
            else:
                await self.stream.flush()
        elif isinstance(message, EndOfStreamIn):
            await self._feed(self.decoder.finish())
            if self.stream is None:
                await self.emit(server_end_of_stream())
                await self.done()
            else:
                await self.stream.end()
        elif isinstance(message, TextIn):
            raise RequestError(POLICY, "'text' messages belong to TTS requests; an STT request takes 'audio'")

    async def _feed(self, pcm: bytes) -> None:
        if not pcm:
            return
        if self.stream is None:
            assert self.decoder.sample_rate is not None
            await self._open_backend(self.decoder.sample_rate)
        assert self.stream is not None and self.decoder.sample_rate is not None
        self.audio_s += len(pcm) / 2 / self.decoder.sample_rate
        self.vad.hear(pcm, self.decoder.sample_rate)
        if self._measure_vad:
            self.vad.observe_pcm(pcm, self.decoder.sample_rate)
            await self._send_steps(self.audio_s)
        await self.stream.send_audio(pcm)

    async def _consume(self, stream: STTStream) -> None:
        async for event in stream:
            if isinstance(event, VADUpdate):
                self._heard_s = max(self._heard_s, event.time_s)
                if not self._measure_vad:
                    self.vad.observe(event)
                    await self._send_steps(min(event.time_s, self.audio_s))
                await self._send_words(self.words.ripe(self._heard_s))
            elif isinstance(event, Transcript):
                self._heard_s = max(self._heard_s, event.end_s or 0.0)
                await self._send_words(self.words.transcript(event, self._heard_s))
            elif isinstance(event, Flushed):
                await self._send_words(self.words.rest())
                await self._send_steps(self.audio_s)
                if self._flush_ids:
                    await self.emit(server_flushed(self._flush_ids.popleft()))
            elif isinstance(event, StreamEnded):
                await self._send_words(self.words.rest())
                await self._send_steps(self.audio_s, partial=True)
                await self.emit(server_end_of_stream())
                await self.done()
                return

    async def _send_steps(self, time_s: float, *, partial: bool = False) -> None:
        await self.vad.judge()
        for step in self.vad.steps_until(time_s, partial=partial):
            await self.emit(step)

    async def _send_words(self, words: list[Word]) -> None:
        for word in words:
            await self.emit(server_text(word.text, round(word.start_s, 3)))
            await self.emit(server_end_text(round(word.end_s, 3)))

    async def _release(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
