"""The speech-to-text interface: :class:`STTProvider` and its live :class:`STTStream`."""

from __future__ import annotations

import abc
import os
from typing import Any, ClassVar, TypeVar

import attrs

from .audio import AudioFormat, Framer, PCMAudio, StreamConverter, identify, read_file
from .errors import AudioFormatError, UnsupportedFeature
from .events import Flushed, STTEvent, Transcript
from .provider import Provider
from .streams import EventStream, StreamState

__all__ = ["AudioInput", "STTCapabilities", "STTProvider", "STTStream"]

S = TypeVar("S")
AudioInput = bytes | PCMAudio | str | os.PathLike[str]


@attrs.frozen
class STTCapabilities:
    """What an STT provider can do; adapters and the CLI read it instead of trying and failing."""

    batch: bool = True
    streaming: bool = True
    interim_results: bool = False
    word_timestamps: bool = False
    flush: bool = False  # flush() forces out withheld text and is confirmed by Flushed
    vad: bool = False  # the stream emits VADUpdate / SpeechStarted
    turn_detection: bool = False  # the stream emits TurnEnded
    languages: tuple[str, ...] = ()
    sample_rates: tuple[int, ...] = ()  # rates the vendor takes natively; others are resampled


class STTStream(EventStream[STTEvent]):
    """A live recognition session.

    Send audio in the format given to ``provider.stream(format=...)``, in chunks of any size; the stream converts it
    to what the vendor takes and frames it (80 ms by default). Iterate to receive events up to ``StreamEnded``.
    """

    def __init__(
        self,
        provider: str,
        *,
        format: AudioFormat,
        wire_format: AudioFormat,
        frame_ms: float = 80.0,
    ) -> None:
        super().__init__(provider)
        self.format = format
        self.wire_format = wire_format
        self._converter = StreamConverter(format, wire_format)
        self._framer = Framer.for_format(wire_format, frame_ms) if wire_format.is_raw else Framer(4096)
        self.wire_bytes_sent = 0

    async def send_audio(self, data: bytes) -> None:
        """Queue audio for recognition."""
        self._ensure_open()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioFormatError(f"send_audio takes bytes of {self.format} audio, not {type(data).__name__}")
        for frame in self._framer.push(self._converter.process(bytes(data))):
            await self._send_frame_counted(frame)

    async def flush(self) -> Flushed:
        """Force out text the provider is holding back; returns once the provider confirms."""
        self._ensure_open()
        rest = self._framer.rest()
        stray = self._stray_bytes(rest)
        if stray:
            rest, partial_sample = rest[:-stray], rest[-stray:]
            for frame in self._framer.push(partial_sample):
                await self._send_frame_counted(frame)
        if rest:
            await self._send_frame_counted(rest)
        return await self._request_flush()

    async def end(self) -> None:
        """No more audio: the provider finishes, emits its last events and ``StreamEnded``.

        Audio that stops inside a sample fails the stream with :class:`AudioFormatError`.
        """
        self._ensure_open()
        self.state = StreamState.ENDING
        try:
            tail = self._converter.flush()
        except AudioFormatError as exc:
            self._fail(exc)
            raise
        for frame in self._framer.push(tail):
            await self._send_frame_counted(frame)
        rest = self._framer.rest()
        stray = self._stray_bytes(rest)
        if stray:
            error = AudioFormatError(
                f"{self.format} stream ended inside a sample: {stray} stray bytes "
                f"(audio must come in whole {self.format.sample_width * self.format.channels}-byte sample frames)",
                provider=self.provider,
            )
            self._fail(error)
            raise error
        if rest:
            await self._send_frame_counted(rest)
        await self._send_end()

    def _stray_bytes(self, data: bytes) -> int:
        """How many bytes at the end of ``data`` are an incomplete wire sample."""
        if not self.wire_format.is_raw:
            return 0
        return len(data) % (self.wire_format.sample_width * self.wire_format.channels)

    async def _send_frame_counted(self, frame: bytes) -> None:
        self.wire_bytes_sent += len(frame)
        await self._send_frame(frame)

    @abc.abstractmethod
    async def _send_frame(self, frame: bytes) -> None:
        """Send one frame of ``wire_format`` audio."""

    @abc.abstractmethod
    async def _send_end(self) -> None:
        """Tell the provider the audio is over."""


class STTProvider(Provider[S], abc.ABC):
    """A speech-to-text backend. Subclasses set ``name``, ``Settings``, ``capabilities`` and implement
    ``_transcribe`` and/or ``_stream``."""

    capabilities: ClassVar[STTCapabilities]

    async def transcribe(
        self, audio: AudioInput, *, format: AudioFormat | str | None = None, **options: Any
    ) -> Transcript:
        """Recognise a whole recording (a path, bytes or :class:`PCMAudio`) and return one final transcript.

        Containers (WAV, FLAC, Ogg/Opus, MP3) are recognised; raw bytes need ``format``.
        """
        if not self.capabilities.batch:
            raise UnsupportedFeature("batch transcription is not supported", provider=self.name)
        settings = self._settings_with(options)
        if isinstance(audio, PCMAudio):
            data, fmt = audio.data, audio.format
        elif isinstance(audio, (bytes, bytearray, memoryview)):
            data = bytes(audio)
            fmt = identify(data, format)
        else:
            pcm = read_file(audio, format)
            data, fmt = pcm.data, pcm.format
        return await self._transcribe(data, fmt, settings)

    def stream(self, *, format: AudioFormat | str, **options: Any) -> STTStream:
        """A live session for audio in ``format``; use it as ``async with provider.stream(...) as stream``."""
        if not self.capabilities.streaming:
            raise UnsupportedFeature("streaming recognition is not supported", provider=self.name)
        return self._stream(AudioFormat.parse(format), self._settings_with(options))

    @abc.abstractmethod
    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: S) -> Transcript:
        """Recognise ``audio`` (in ``format``, never empty)."""

    @abc.abstractmethod
    def _stream(self, format: AudioFormat, settings: S) -> STTStream:
        """Create an unopened stream for audio in ``format``."""
