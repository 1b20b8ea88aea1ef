"""Resampling with soxr: whole recordings, and live streams chunk by chunk."""

from __future__ import annotations

from typing import Any

from ..errors import AudioFormatError
from ._extras import numpy, soxr
from .formats import PCMAudio, check_sample_rate

__all__ = ["StreamResampler", "resample"]


def resample(audio: PCMAudio, sample_rate: int) -> PCMAudio:
    """The same audio at another rate (soxr, high quality)."""
    check_sample_rate(sample_rate)
    if audio.sample_rate == sample_rate or not audio.data:
        return PCMAudio(audio.data, sample_rate)
    np = numpy()
    samples = np.frombuffer(audio.data, dtype="<i2")
    out = soxr().resample(samples, audio.sample_rate, sample_rate, quality="HQ")
    return PCMAudio(bytes(out.astype("<i2").tobytes()), sample_rate)


class StreamResampler:
    """Resample a live 16-bit mono stream chunk by chunk, with no gaps or clicks between chunks."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        check_sample_rate(from_rate)
        check_sample_rate(to_rate)
        self.from_rate, self.to_rate = from_rate, to_rate
        self._np = numpy()
        self._stream = self._new_stream()

    def _new_stream(self) -> Any:
        return soxr().ResampleStream(self.from_rate, self.to_rate, 1, dtype="int16", quality="HQ")

    def process(self, pcm16: bytes) -> bytes:
        """Resample the next chunk; the filter holds a few milliseconds back until later chunks or :meth:`flush`."""
        if len(pcm16) % 2:
            raise AudioFormatError(f"16-bit PCM must come in whole samples: {len(pcm16)} bytes is odd")
        samples = self._np.frombuffer(pcm16, dtype="<i2")
        return bytes(self._stream.resample_chunk(samples, last=False).tobytes())

    def flush(self) -> bytes:
        """The samples still held back by the filter; the resampler then starts afresh for a new stream."""
        tail = self._stream.resample_chunk(self._np.zeros(0, dtype="<i2"), last=True)
        self._stream = self._new_stream()
        return bytes(tail.tobytes())
