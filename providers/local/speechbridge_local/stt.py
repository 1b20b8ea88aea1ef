"""Offline speech-to-text: pocketsphinx's bundled US English model, webrtcvad and a silence end of turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from speechbridge.audio import AudioFormat, decode, resample
from speechbridge.errors import ProviderError, SpeechBridgeError
from speechbridge.events import Flushed, Ready, StreamEnded, STTEvent, Transcript
from speechbridge.stt import STTCapabilities, STTProvider, STTStream

from .recognizer import SAMPLE_RATE, DecoderPool, Recognizer
from .settings import LocalSTTSettings
from .smart_turn import SmartTurn

__all__ = ["LocalSTT", "LocalSTTStream"]

T = TypeVar("T")


class LocalSTT(STTProvider[LocalSTTSettings]):
    """pocketsphinx 5 with the US English model inside its wheel: no network, no key.

    Audio at any rate is resampled to 16 kHz (the model is wideband only, so 8 kHz telephony audio is upsampled).
    Decoders are loaded on first use and reused by later calls and streams.
    """

    name = "local"
    Settings = LocalSTTSettings
    capabilities = STTCapabilities(
        batch=True,
        streaming=True,
        interim_results=True,
        word_timestamps=True,
        flush=True,
        vad=True,
        turn_detection=True,
        languages=("en",),
        sample_rates=(SAMPLE_RATE,),
    )
    wire_format: ClassVar[AudioFormat] = AudioFormat.pcm16(SAMPLE_RATE)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._decoders = DecoderPool()

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: LocalSTTSettings) -> Transcript:
        return await asyncio.to_thread(self._transcribe_now, audio, format, settings)

    def _transcribe_now(self, audio: bytes, format: AudioFormat, settings: LocalSTTSettings) -> Transcript:
        pcm = resample(decode(audio, format), SAMPLE_RATE)
        recognizer = self._recognizer(settings, live=False, interim_results=False)
        try:
            return _engine_call(recognizer.transcribe_all, pcm.data)
        finally:
            self._decoders.release(recognizer.detach())

    def _stream(self, format: AudioFormat, settings: LocalSTTSettings) -> LocalSTTStream:
        return LocalSTTStream(self, format, settings)

    def _recognizer(self, settings: LocalSTTSettings, *, live: bool, interim_results: bool) -> Recognizer:
        completion = SmartTurn.load().completion if live and settings.end_of_turn == "smart-turn" else None
        decoder = _engine_call(self._decoders.acquire)
        return Recognizer(decoder, settings, live=live, interim_results=interim_results, completion=completion)

    async def aclose(self) -> None:
        self._decoders.clear()


class LocalSTTStream(STTStream):
    """A live pocketsphinx session. Decoding runs on a worker thread of the stream's own, one frame at a time, so
    the event loop never waits on it and frames are decoded in the order they were sent.

    Events: ``Ready``; per 80 ms frame a ``VADUpdate`` (``speech_prob`` is the share of its 20 ms webrtcvad steps
    judged speech); ``SpeechStarted``; interim transcripts whenever the hypothesis changes; a final transcript with
    word times (seconds from the stream's start) when a turn ends, at ``flush()`` and at ``end()``; ``TurnEnded``
    after ``silence_ms`` of silence, or at the first silent frame when ``end_of_turn="smart-turn"`` and Smart Turn
    judges the turn finished (``reason="semantic_vad"``); ``Flushed`` after the flush's final; ``StreamEnded`` after
    the last final.
    A flush does not end the turn (the turn's text includes what it finalised); ``end()`` gives no ``TurnEnded``,
    since no silence ended that turn. pocketsphinx learns the audio's cepstral mean as the stream goes, so a stream's
    first utterance is recognised a little less well than later ones (``transcribe()`` normalises each utterance
    over all of it).
    """

    def __init__(self, provider: LocalSTT, format: AudioFormat, settings: LocalSTTSettings) -> None:
        super().__init__(provider.name, format=format, wire_format=provider.wire_format)
        self._owner = provider
        self.settings = settings
        self._worker: ThreadPoolExecutor | None = None
        self._recognizer: Recognizer | None = None

    async def _open(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speechbridge-local-stt")
        self._recognizer = await self._run(
            self._owner._recognizer, self.settings, live=True, interim_results=self.settings.interim_results
        )
        self._emit(Ready(sample_rate=SAMPLE_RATE))

    async def _send_frame(self, frame: bytes) -> None:
        assert self._recognizer is not None
        self._emit_all(await self._run(self._recognizer.feed, frame))

    async def _send_flush(self, flush_id: int) -> None:
        assert self._recognizer is not None
        self._emit_all(await self._run(self._recognizer.finish))
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        assert self._recognizer is not None
        self._emit_all(await self._run(self._recognizer.finish))
        self._emit(StreamEnded())

    async def _close(self) -> None:
        if self._worker is None:
            return
        if self._recognizer is not None:
            recognizer, self._recognizer = self._recognizer, None
            self._worker.submit(lambda: self._owner._decoders.release(recognizer.detach()))
        self._worker.shutdown(wait=False)
        self._worker = None

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        assert self._worker is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._worker, lambda: _engine_call(function, *args, **kwargs))
        except SpeechBridgeError as exc:
            self._fail(exc)
            raise

    def _emit_all(self, events: list[STTEvent]) -> None:
        for event in events:
            self._emit(event)


def _engine_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call into pocketsphinx or webrtcvad, turning their failures into a speechbridge error."""
    try:
        return function(*args, **kwargs)
    except SpeechBridgeError:
        raise
    except Exception as exc:
        raise ProviderError(f"the pocketsphinx engine failed: {exc}", provider=LocalSTT.name) from exc
