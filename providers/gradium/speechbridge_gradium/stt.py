"""Gradium speech-to-text: one-shot over REST (NDJSON read as it arrives), live over WebSocket with semantic VAD.

Audio Gradium takes as it is (``pcm_<rate>`` at its rates, ``ulaw_8000``, ``alaw_8000``, WAV with integer PCM,
Ogg/Opus) is sent unchanged; anything else is converted by :mod:`speechbridge.audio` to 16-bit PCM at the nearest
Gradium rate at or above its own. The rate is always explicit (``pcm_16000``): bare ``pcm`` would mean 24 kHz.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Coroutine
from typing import Any, ClassVar, Final

from speechbridge.audio import AudioFormat, decode, resample
from speechbridge.errors import AudioFormatError, ConfigError, ProtocolError
from speechbridge.events import Flushed, Ready, SpeechStarted, StreamEnded, Transcript, TurnEnded, VADUpdate, Word
from speechbridge.streams import StreamState
from speechbridge.stt import STTCapabilities, STTProvider, STTStream
from speechbridge.transports import iter_ndjson, scrub_error, stream_request
from speechbridge.turns import SemanticTurnDetector

from .client import GradiumClient
from .connection import Credentials, GradiumRequest
from .protocol import (
    FRAME_S,
    LANGUAGES,
    PCM_RATES,
    PROVIDER,
    STT_POST_PATH,
    STT_WS_PATH,
    EndOfStreamOut,
    EndTextOut,
    ErrorOut,
    FlushedOut,
    ReadyOut,
    ServerMessage,
    Setup,
    StepOut,
    TextOut,
    client_end_of_stream,
    client_flush,
    error_from_rest,
    parse_server_message,
)
from .settings import GradiumSTTSettings

__all__ = ["GradiumSTT", "GradiumSTTStream", "TranscriptBuilder", "input_format_for"]

G711_FORMATS: Final = {"mulaw": "ulaw_8000", "alaw": "alaw_8000"}
WAV_INTEGER_BITS: Final = (16, 24, 32)
REST_CONTENT_TYPES: Final = {"wav": "audio/wav", "opus": "audio/ogg"}  # raw formats go as audio/pcm + input_format


def _pcm_rate_for(sample_rate: int | None) -> int:
    """The lowest Gradium PCM rate at or above ``sample_rate`` (48 kHz above them all)."""
    return next((rate for rate in PCM_RATES if sample_rate is not None and rate >= sample_rate), PCM_RATES[-1])


def input_format_for(format: AudioFormat) -> tuple[str, AudioFormat]:
    """The ``input_format`` to declare for live audio in ``format``, and the audio to send in it.

    Raw audio Gradium takes goes as it is; other raw audio becomes 16-bit mono PCM at a Gradium rate; WAV and Ogg/Opus
    streams go as they are (the WAV must hold 16/24/32-bit integer PCM). FLAC and MP3 cannot be converted live.
    """
    if format.channels == 1 and format.encoding == "pcm_s16le" and format.sample_rate in PCM_RATES:
        return f"pcm_{format.sample_rate}", format
    if format.channels == 1 and format.encoding in G711_FORMATS and format.sample_rate == 8000:
        return G711_FORMATS[format.encoding], format
    if format.encoding == "wav":
        return "wav", format
    if format.encoding == "ogg_opus":
        return "opus", format
    if not format.is_raw:
        raise AudioFormatError(
            f"a live Gradium stream cannot take {format} audio (accepted: raw pcm/f32/mulaw/alaw at any rate, "
            "wav or opus; use transcribe() for flac or mp3)",
            provider=PROVIDER,
        )
    rate = _pcm_rate_for(format.sample_rate)
    return f"pcm_{rate}", AudioFormat.pcm16(rate)


def _wav_is_integer_pcm(data: bytes) -> bool:
    """Whether a WAV file holds mono 16/24/32-bit integer PCM, the WAV Gradium reads."""
    position = 12
    while position + 8 <= len(data):
        chunk_id, size = data[position : position + 4], struct.unpack_from("<I", data, position + 4)[0]
        if chunk_id == b"fmt " and size >= 16 and position + 24 <= len(data):
            tag, channels, _, _, _, bits = struct.unpack_from("<HHIIHH", data, position + 8)
            if tag == 0xFFFE and size >= 26 and position + 34 <= len(data):
                tag = struct.unpack_from("<H", data, position + 32)[0]  # the extensible format's sub-format
            return tag == 1 and channels == 1 and bits in WAV_INTEGER_BITS
        position += 8 + size + size % 2
    return False


def _batch_input(audio: bytes, format: AudioFormat) -> tuple[bytes, str]:
    """``audio`` as Gradium's REST endpoint takes it, and its ``input_format``."""
    if format.encoding == "wav" and _wav_is_integer_pcm(audio):
        return audio, "wav"
    if format.encoding == "ogg_opus" and b"OpusHead" in audio[:128]:
        return audio, "opus"
    if format.is_raw and len(audio) % format.frame_width:
        raise AudioFormatError(
            f"{format} audio is truncated: {len(audio)} bytes is not a whole number of "
            f"{format.frame_width}-byte sample frames",
            provider=PROVIDER,
        )
    if format.is_raw and format.encoding != "pcm_f32le" and format.channels == 1:
        with_rate = input_format_for(format)
        if with_rate[1] == format:
            return audio, with_rate[0]
    pcm = decode(audio, format)
    rate = _pcm_rate_for(pcm.sample_rate)
    if pcm.sample_rate != rate:
        pcm = resample(pcm, rate)
    return pcm.data, f"pcm_{rate}"


class TranscriptBuilder:
    """Gradium's word-by-word ``text`` messages as transcripts.

    Each word extends the interim transcript; ``end_text`` sets the end of the word before it (otherwise a word ends
    where the next one starts, or at its own start). :meth:`finalize` commits the words heard since the last final.
    """

    def __init__(self, language: str | None) -> None:
        self.language = language
        self.words: list[Word] = []
        self._texts: list[str] = []  # the words' texts, stripped, without empty ones: the transcript's text
        self._ended = False  # the last word's end came from end_text

    def add(self, message: TextOut) -> Transcript:
        """Take one ``text`` word and return the interim transcript it extends."""
        if self.words and self.words[-1].end_s < message.start_s and not self._ended:
            self.words[-1] = Word(self.words[-1].text, self.words[-1].start_s, message.start_s)
        self._ended = False
        self.words.append(Word(message.text, message.start_s, max(message.start_s, message.stop_s or 0.0)))
        if text := message.text.strip():
            self._texts.append(text)
        return self._transcript(is_final=False)

    def end_text(self, message: EndTextOut) -> None:
        """Take an ``end_text``: the previous word ends at its ``stop_s``."""
        if self.words:
            last = self.words[-1]
            self.words[-1] = Word(last.text, last.start_s, max(last.start_s, message.stop_s))
            self._ended = True

    def finalize(self) -> Transcript | None:
        """The final transcript of the words since the last one, or None when there are none."""
        if not self.words:
            return None
        final = self._transcript(is_final=True)
        self.words, self._texts = [], []
        return final

    def _transcript(self, *, is_final: bool) -> Transcript:
        words = tuple(self.words)
        text = " ".join(self._texts)
        return Transcript(text, is_final, words[0].start_s, words[-1].end_s, words, language=self.language)


class GradiumSTT(GradiumClient, STTProvider[GradiumSTTSettings]):
    """Gradium STT: ``transcribe`` over REST, ``stream`` over WebSocket (one socket per stream, or shared sockets
    with ``multiplex=True``).

    Authentication as :class:`GradiumClient` says; ``transcribe()`` needs the key (Gradium takes tokens on WebSockets
    only).
    """

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = GradiumSTTSettings
    api_key_env: ClassVar[str | None] = "GRADIUM_API_KEY"
    capabilities: ClassVar[STTCapabilities] = STTCapabilities(
        batch=True,
        streaming=True,
        interim_results=True,
        word_timestamps=True,
        flush=True,
        vad=True,
        turn_detection=True,
        languages=LANGUAGES,
        sample_rates=PCM_RATES,
    )

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: GradiumSTTSettings) -> Transcript:
        if self._api_key is None and self._token is not None:
            raise ConfigError(
                "Gradium takes browser tokens on WebSockets only: transcribe() needs an api_key (or use stream())",
                provider=PROVIDER,
            )
        credentials = Credentials(api_key=self._require_api_key())
        body, input_format = _batch_input(audio, format)
        query = {"model": settings.model, "input_format": input_format}
        if settings.json_config():
            query["json_config"] = json.dumps(settings.json_config())
        url, headers, secrets = await credentials.authenticate(settings.api_url + STT_POST_PATH)
        headers["content-type"] = REST_CONTENT_TYPES.get(input_format, "audio/pcm")
        builder = TranscriptBuilder(settings.language)
        async with stream_request(
            self._client(),
            "POST",
            url,
            provider=PROVIDER,
            mapper=error_from_rest,
            secrets=secrets,
            params=query,
            headers=headers,
            content=body,
            timeout=settings.timeout_s,
        ) as response:
            async for line in iter_ndjson(response, provider=PROVIDER):
                message = parse_server_message(line)
                if isinstance(message, ErrorOut):
                    raise scrub_error(message.to_error(), secrets)
                if isinstance(message, TextOut):
                    builder.add(message)
                elif isinstance(message, EndTextOut):
                    builder.end_text(message)
                elif isinstance(message, EndOfStreamOut):
                    break
        return builder.finalize() or Transcript("", True, language=settings.language)

    def _stream(self, format: AudioFormat, settings: GradiumSTTSettings) -> GradiumSTTStream:
        return GradiumSTTStream(self, format, settings)


class GradiumSTTStream(STTStream):
    """A live Gradium recognition over WebSocket.

    **Events.** ``Ready`` once Gradium accepted the setup (``open()`` waits for it unless ``wait_for_ready=False``);
    per 80 ms step a ``VADUpdate`` with every horizon (``speech_prob`` is one minus the inactivity at the shortest
    horizon); ``SpeechStarted`` at the first word of a turn; an interim ``Transcript`` per word (each one holds every
    word since the last final); a final ``Transcript`` when a flush completes, when a turn ends and at the end of the
    stream; ``TurnEnded`` (semantic VAD); ``Flushed``; ``StreamEnded``.

    **Flush.** ``flush()`` sends a ``flush`` and returns when the ``flushed`` with the same id arrives, after the
    words it forced out (and their final transcript). A flush does not end the turn.

    **Turns.** With ``turn_detection`` (the default), once words are pending and the inactivity probability at
    ``turn_horizon_s`` reaches ``turn_threshold`` for ``turn_steps`` steps, the stream sends a flush of its own and,
    when its ``flushed`` arrives, emits the final transcript and ``TurnEnded`` with the whole turn's text. VAD is
    ignored for ``turn_cooldown_s`` after any flush. A turn found after ``end()`` (audio sent faster than real time)
    cannot be flushed: it ends with the stream, ``TurnEnded`` just before ``StreamEnded``; a turn that is still
    going on when the stream ends gets no ``TurnEnded``.

    **Drops.** A dropped socket (or a retryable error frame) starts a new request, on a new socket or, multiplexed,
    through the pool, as :class:`~speechbridge.stt.STTStream` describes: interim words of the old request are
    superseded by the replay, the turn's final text so far is kept.
    """

    reconnectable: ClassVar[bool] = True

    def __init__(self, stt: GradiumSTT, format: AudioFormat, settings: GradiumSTTSettings) -> None:
        input_format, wire_format = input_format_for(format)
        super().__init__(PROVIDER, format=format, wire_format=wire_format, reliability=stt.reliability)
        self.settings = settings
        self.input_format = input_format
        self.url = settings.ws_url + STT_WS_PATH
        self.request_id: str | None = None
        self._pool = stt.pool  # resolves the credentials now: a missing key fails before connecting
        self._request: GradiumRequest | None = None
        self._turn_text: list[str] = []
        self._turn_last_end: float | None = None  # in the stream's timeline (it may come from an earlier request)
        self._in_turn = False  # SpeechStarted was emitted and the turn has not ended
        self._ready_sent = False
        self._flush_ids = itertools.count(1)
        self._new_session()

    def _new_session(self) -> None:
        """Forget what belongs to one request: its interim words, its flushes, its VAD history."""
        self._builder = TranscriptBuilder(self.settings.language)
        self._turn_ends_with_stream = False  # a turn ended after end(), when no flush could be sent
        self._flushes: dict[str, int | None] = {}  # wire flush_id -> the caller's flush id, None for a turn's
        self._turns = (
            SemanticTurnDetector(
                self.settings.turn_horizon_s,
                threshold=self.settings.turn_threshold,
                steps=self.settings.turn_steps,
                cooldown_s=self.settings.turn_cooldown_s,
            )
            if self.settings.turn_detection
            else None
        )

    async def _open(self) -> None:
        self._new_session()
        setup = Setup(
            kind="stt",
            model_name=self.settings.model,
            input_format=self.input_format,
            json_config=self.settings.json_config(),
        )
        self._request = await self._pool.start(
            self.url, setup, multiplex=self.settings.multiplex, timeout_s=self.settings.timeout_s
        )
        if self.settings.wait_for_ready or self._ready_sent:  # a new request after a drop is confirmed first
            self._on_ready(await self._request.ready(self.settings.timeout_s))
        session = self._session
        self._request.listen(self._handle, lambda error: self._session_failed(error, session))

    def _send_frame(self, frame: bytes) -> Coroutine[Any, Any, None]:
        assert self._request is not None
        return self._request.send_audio(frame)  # the request's coroutine itself: one step less every 80 ms

    async def _send_flush(self, flush_id: int) -> None:
        await self._flush(flush_id)

    async def _send_end(self) -> None:
        await self._send(client_end_of_stream())

    async def _close(self) -> None:
        if self._request is not None:
            await self._request.aclose()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._request is not None
        await self._request.send(message)

    async def _flush(self, flush_id: int | None) -> None:
        wire_id = next(self._flush_ids)
        self._flushes[str(wire_id)] = flush_id
        if self._turns is not None and flush_id is not None:
            self._turns.flush_sent()
        await self._send(client_flush(wire_id))

    def _on_ready(self, ready: ReadyOut) -> None:
        self.request_id = ready.request_id
        if self._ready_sent:
            return
        self._ready_sent = True
        self._emit(Ready(request_id=ready.request_id, sample_rate=self.wire_format.sample_rate or ready.sample_rate))

    def _handle(self, message: ServerMessage) -> None:
        """One server message, handed over by the request as soon as it is parsed (no task in between)."""
        if isinstance(message, StepOut):  # most messages: one every 80 ms
            self._step(message)
        elif isinstance(message, ReadyOut):
            self._on_ready(message)
        elif isinstance(message, TextOut):
            if not self._in_turn:
                self._in_turn = True
                self._emit(SpeechStarted(message.start_s))
            self._emit(self._builder.add(message))
        elif isinstance(message, EndTextOut):
            self._builder.end_text(message)
        elif isinstance(message, FlushedOut):
            self._flushed(message)
        elif isinstance(message, EndOfStreamOut):
            self._finalize()
            if self._turn_ends_with_stream or None in self._flushes.values():
                self._end_turn()
            self._emit(StreamEnded())

    def _step(self, message: StepOut) -> None:
        vad = message.vad
        if not vad:
            return
        time_s = message.total_duration_s or round((message.step_idx + 1) * FRAME_S, 6)
        self._emit(VADUpdate(time_s, round(1.0 - vad[0][1], 6), vad))
        turns = self._turns
        if turns is None:
            return
        pending = bool(self._builder.words or self._turn_text)
        if turns.update(time_s, vad, has_pending_text=pending) is None:
            return
        if self.state is StreamState.OPEN:
            self._spawn(self._flush(None))
        else:  # after end() no flush may be sent: end_of_stream drains the words, and the turn ends with them
            self._turn_ends_with_stream = True

    def _flushed(self, message: FlushedOut) -> None:
        key = str(message.flush_id)
        if key not in self._flushes:
            raise ProtocolError(
                f"'flushed' for a flush_id that was never sent: {message.flush_id!r}", provider=PROVIDER
            )
        flush_id = self._flushes.pop(key)
        self._finalize()
        if flush_id is not None:
            self._emit(Flushed(flush_id))
        else:
            self._end_turn()

    def _end_turn(self) -> None:
        if self._turn_text:
            last_end = None if self._turn_last_end is None else self._turn_last_end - self.session_start_s
            self._emit(TurnEnded(" ".join(self._turn_text), "semantic_vad", last_end))  # the base shifts it back
        self._turn_text, self._turn_last_end, self._in_turn = [], None, False

    def _finalize(self) -> None:
        final = self._builder.finalize()
        if final is None:
            return
        self._emit(final)
        if final.text:
            self._turn_text.append(final.text)
        self._turn_last_end = None if final.end_s is None else final.end_s + self.session_start_s
