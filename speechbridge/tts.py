"""The text-to-speech interface: :class:`TTSProvider` and its live :class:`TTSStream`."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, TypeVar

import attrs

from .audio import AudioFormat, StreamConverter, wav_header
from .errors import AudioFormatError, ConfigError, UnsupportedFeature
from .events import AudioChunk, Flushed, StreamEnded, TTSEvent, WordTiming
from .provider import Provider
from .streams import EventStream, StreamState

__all__ = ["Synthesis", "TTSCapabilities", "TTSProvider", "TTSStream", "Voice"]

S = TypeVar("S")


@attrs.frozen
class TTSCapabilities:
    """What a TTS provider can do."""

    batch: bool = True
    streaming: bool = True
    word_timestamps: bool = False
    multiplexing: bool = False  # several streams share one connection
    languages: tuple[str, ...] = ()
    sample_rates: tuple[int, ...] = ()  # rates the vendor produces natively; others are resampled


@attrs.frozen
class Voice:
    """A voice a TTS provider offers."""

    id: str
    name: str
    language: str | None = None
    description: str | None = None


@attrs.frozen
class Synthesis:
    """Synthesised speech: encoded ``audio`` in ``format``, and word timings when the provider gives them."""

    audio: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    format: AudioFormat
    words: tuple[WordTiming, ...] = ()
    duration_s: float | None = None


class TTSStream(EventStream[TTSEvent]):
    """A live synthesis session: send text as it comes, receive audio in ``format`` as it is made.

    Streams produce raw audio, or WAV whose header (with an open-ended length) leads the first chunk.
    """

    def __init__(self, provider: str, *, format: AudioFormat, native_format: AudioFormat) -> None:
        super().__init__(provider)
        if not (format.is_raw or format.encoding == "wav"):
            raise AudioFormatError(
                f"streams produce raw audio or wav, not {format.encoding} (use synthesize() for containers)",
                provider=provider,
            )
        self.format = format
        self.native_format = native_format
        self._header = b""
        raw = format
        if format.encoding == "wav":
            raw = AudioFormat.pcm16(format.sample_rate or native_format.sample_rate or 24000)
            self.format = AudioFormat("wav", raw.sample_rate)
            self._header = wav_header(raw.sample_rate or 24000)
        self._converter = StreamConverter(native_format, raw)

    async def send_text(self, text: str) -> None:
        """Queue text to speak; it is joined to what came before exactly as given."""
        self._ensure_open()
        if not isinstance(text, str):
            raise ConfigError(f"send_text takes a str, not {type(text).__name__}", provider=self.provider)
        if text:
            await self._send_text(text)

    async def flush(self) -> Flushed:
        """Speak everything sent so far now; returns once its audio has been emitted."""
        self._ensure_open()
        return await self._request_flush()

    async def end(self) -> None:
        """No more text: the provider speaks the rest and emits ``StreamEnded``."""
        self._ensure_open()
        self.state = StreamState.ENDING
        await self._send_end()

    def _emit_audio(self, native: bytes) -> None:
        """Report audio in ``native_format``; it is converted and emitted as an :class:`AudioChunk`."""
        self._emit_converted(self._converter.process(native))

    def _emit_audio_end(self) -> None:
        """Report that no more audio will come, so the converter's tail is emitted."""
        self._emit_converted(self._converter.flush(), last=True)

    def _emit(self, event: TTSEvent | StreamEnded | Flushed) -> None:
        if isinstance(event, Flushed):
            self._emit_converted(self._converter.flush())  # the flushed text's audio, all of it, before Flushed
        super()._emit(event)

    def _emit_converted(self, data: bytes, *, last: bool = False) -> None:
        if (data or last) and self._header:
            data, self._header = self._header + data, b""
        if data:
            super()._emit(AudioChunk(data, self.format))

    @abc.abstractmethod
    async def _send_text(self, text: str) -> None:
        """Send text to the provider."""

    @abc.abstractmethod
    async def _send_end(self) -> None:
        """Tell the provider the text is over."""


class TTSProvider(Provider[S], abc.ABC):
    """A text-to-speech backend. Subclasses set ``name``, ``Settings``, ``capabilities`` and implement
    ``_synthesize``, ``_stream`` and ``voices``."""

    capabilities: ClassVar[TTSCapabilities]
    default_format: ClassVar[AudioFormat]

    async def synthesize(
        self, text: str, *, voice: str | None = None, format: AudioFormat | str | None = None, **options: Any
    ) -> Synthesis:
        """Speak ``text`` and return the whole audio, encoded as ``format`` (any raw format or container)."""
        if not self.capabilities.batch:
            raise UnsupportedFeature("one-shot synthesis is not supported", provider=self.name)
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("text to speak is empty", provider=self.name)
        settings = self._settings_with(self._voice_option(voice, options))
        fmt = AudioFormat.parse(format) if format is not None else self.default_format
        return await self._synthesize(text, fmt, settings)

    def stream(self, *, voice: str | None = None, format: AudioFormat | str | None = None, **options: Any) -> TTSStream:
        """A live synthesis session; use it as ``async with provider.stream(...) as stream``."""
        if not self.capabilities.streaming:
            raise UnsupportedFeature("streaming synthesis is not supported", provider=self.name)
        settings = self._settings_with(self._voice_option(voice, options))
        fmt = AudioFormat.parse(format) if format is not None else self.default_format
        return self._stream(fmt, settings)

    @staticmethod
    def _voice_option(voice: str | None, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "voice": voice} if voice is not None else options

    @abc.abstractmethod
    async def voices(self) -> list[Voice]:
        """The voices this provider offers."""

    @abc.abstractmethod
    async def _synthesize(self, text: str, format: AudioFormat, settings: S) -> Synthesis:
        """Speak ``text`` (never empty) and encode the result as ``format``."""

    @abc.abstractmethod
    def _stream(self, format: AudioFormat, settings: S) -> TTSStream:
        """Create an unopened stream producing ``format``."""
