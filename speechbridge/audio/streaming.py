"""Live audio: converting a raw stream between formats, and cutting it into fixed frames."""

from __future__ import annotations

from ..errors import AudioFormatError, ConfigError
from .codec import decode_raw, encode_raw
from .formats import RAW_ENCODINGS, AudioFormat
from .resampling import StreamResampler

__all__ = ["Framer", "StreamConverter"]


class StreamConverter:
    """Convert a live raw audio stream to another raw format, in chunks of any size.

    A stream already in the target format (raw or container) passes through untouched.
    """

    def __init__(self, source: AudioFormat, target: AudioFormat) -> None:
        self.source, self.target = source, target
        self._passthrough = source == target
        self._pending = b""
        self._resampler: StreamResampler | None = None
        if self._passthrough:
            return
        for fmt in (source, target):
            if not fmt.is_raw:
                raise AudioFormatError(
                    f"cannot convert a live {source} stream to {target}: live conversion takes raw audio, "
                    f"not {fmt.encoding} (accepted: {', '.join(RAW_ENCODINGS)})"
                )
        if target.channels != 1:
            raise AudioFormatError(
                f"cannot stream into {target}: speechbridge produces mono audio (accepted: 1 channel)"
            )
        assert source.sample_rate and target.sample_rate
        if source.sample_rate != target.sample_rate:
            self._resampler = StreamResampler(source.sample_rate, target.sample_rate)

    def process(self, data: bytes) -> bytes:
        """Convert the next chunk; a partial sample at its end waits for the next chunk."""
        if self._passthrough:
            return bytes(data)
        data = self._pending + data
        cut = len(data) - len(data) % self.source.frame_width
        data, self._pending = data[:cut], data[cut:]
        if not data:
            return b""
        pcm = decode_raw(data, self.source).data
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return encode_raw(pcm, self.target.encoding)

    def flush(self) -> bytes:
        """The end of the stream: what the resampler held back. A partial sample left over is an error."""
        if self._pending:
            stray, self._pending = len(self._pending), b""
            raise AudioFormatError(
                f"{self.source} stream ended inside a sample: {stray} stray bytes "
                f"(audio must come in whole {self.source.frame_width}-byte sample frames)"
            )
        if self._resampler is None:
            return b""
        return encode_raw(self._resampler.flush(), self.target.encoding)


class Framer:
    """Cut a byte stream into frames of exactly ``frame_bytes`` (the last one may be shorter)."""

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise ConfigError(f"frame size must be a positive number of bytes, not {frame_bytes}")
        self.frame_bytes = frame_bytes
        self._buffer = bytearray()

    @classmethod
    def for_format(cls, fmt: AudioFormat, frame_ms: float = 80.0) -> Framer:
        """Frames of ``frame_ms`` milliseconds of the raw format ``fmt`` (at least one sample frame)."""
        if not frame_ms > 0:
            raise ConfigError(f"frame length must be a positive number of milliseconds, not {frame_ms}")
        return cls(max(fmt.bytes_for(frame_ms / 1000), fmt.frame_width))

    def push(self, data: bytes) -> list[bytes]:
        """Add data and return every frame now complete."""
        buffer = self._buffer
        if not buffer and len(data) == self.frame_bytes:
            return [data]  # a caller already sending whole frames: no copy
        buffer += data
        size = self.frame_bytes
        whole = len(buffer) - len(buffer) % size
        frames = [bytes(buffer[start : start + size]) for start in range(0, whole, size)]
        del buffer[:whole]
        return frames

    def rest(self) -> bytes:
        """Whatever is left, shorter than a frame; the framer is empty afterwards."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    @property
    def pending(self) -> int:
        return len(self._buffer)
