"""Reading a Gradium ``input_format`` byte stream, cut anywhere, as 16-bit mono PCM.

Raw formats (``pcm``, ``pcm_<rate>``, ``ulaw_8000``, ``alaw_8000``) are converted as they arrive. WAV is read as it
arrives too once its header is complete, when its samples are 16-bit or float PCM, mu-law or A-law. Ogg/Opus and
other WAV encodings are decoded whole: at each flush (what can be decoded so far) and at the end of the stream; a
request holds at most :data:`MAX_WHOLE_INPUT_BYTES` of them.
"""

from __future__ import annotations

import struct
from typing import Final

from speechbridge.audio import AudioFormat, StreamConverter, decode
from speechbridge.errors import AudioFormatError

from ..protocol import STT_INPUT_FORMATS
from .failures import POLICY, RequestError

__all__ = ["MAX_WHOLE_INPUT_BYTES", "InputDecoder"]

MAX_WAV_HEADER: Final = 1 << 20
MAX_WHOLE_INPUT_BYTES: Final = 64 * 1024 * 1024
"""Audio kept to be decoded whole (Ogg/Opus, 24-bit WAV...): over an hour of Opus, 11 min of 24-bit 48 kHz stereo."""
_UNKNOWN_SIZES: Final = (0, 0xFFFFFFFF)
_WAV_STREAMABLE: Final = {(1, 16): "pcm_s16le", (3, 32): "pcm_f32le", (7, 8): "mulaw", (6, 8): "alaw"}
_EXTENSIBLE: Final = 0xFFFE


class InputDecoder:
    """Bytes of one ``input_format`` in, 16-bit mono PCM at :attr:`sample_rate` out."""

    def __init__(self, input_format: str) -> None:
        if input_format not in STT_INPUT_FORMATS:
            raise RequestError(
                POLICY, f"unsupported input_format {input_format!r} (accepted: {', '.join(STT_INPUT_FORMATS)})"
            )
        self.input_format = input_format
        self.declared = STT_INPUT_FORMATS[input_format]
        self.sample_rate: int | None = self.declared.sample_rate if self.declared.is_raw else None
        self._converter: StreamConverter | None = None
        self._source = self.declared  # the raw format being converted
        self._partial = b""  # an incomplete sample frame, until the rest of it arrives
        self._header = bytearray()  # WAV bytes until the header is read
        self._whole = bytearray()  # everything, for formats decoded whole
        self._decoded_bytes = 0  # PCM bytes already given out from whole-file decoding
        self._data_left: int | None = None  # WAV data bytes still expected, when the header says
        self._mode = "raw" if self.declared.is_raw else ("wav_header" if input_format == "wav" else "whole")
        if self.declared.is_raw:
            self._converter = StreamConverter(self.declared, AudioFormat.pcm16(self.declared.sample_rate or 24000))

    def push(self, data: bytes) -> bytes:
        """Take the next bytes; return the PCM they complete."""
        if self._mode == "raw":
            return self._convert(data)
        if self._mode == "wav_header":
            self._header += data
            return self._read_wav_header()
        self._whole += data
        if len(self._whole) > MAX_WHOLE_INPUT_BYTES:
            raise RequestError(
                POLICY,
                f"{self.input_format} audio is decoded whole and this request sent more than {MAX_WHOLE_INPUT_BYTES} "
                "bytes of it: end the request and start another, or send pcm",
            )
        return b""

    def flush(self) -> bytes:
        """A flush: PCM of a format decoded whole, as far as it can be decoded now."""
        if self._mode != "whole" or not self._whole:
            return b""
        try:
            return self._decode_whole()
        except RequestError:
            return b""  # a container cut mid-page decodes at the end

    def finish(self) -> bytes:
        """The end of the stream: the rest of the PCM. Malformed or truncated audio is a :class:`RequestError`."""
        if self._mode == "wav_header":
            if self._header:
                raise RequestError(POLICY, "wav audio ended inside its header")
            return b""
        if self._mode == "whole":
            return self._decode_whole() if self._whole else b""
        if self._partial:
            raise RequestError(
                POLICY,
                f"{self.input_format} audio ended inside a sample: {len(self._partial)} stray bytes "
                f"(audio must come in whole {self._source.frame_width}-byte samples)",
            )
        assert self._converter is not None
        return self._converter.flush()

    def _convert(self, data: bytes) -> bytes:
        if self._data_left is not None:
            data, self._data_left = data[: self._data_left], max(0, self._data_left - len(data))
        data = self._partial + data
        cut = len(data) - len(data) % self._source.frame_width
        data, self._partial = data[:cut], data[cut:]
        assert self._converter is not None
        return self._converter.process(data)

    def _read_wav_header(self) -> bytes:
        header = bytes(self._header)
        parsed = _wav_header(header)
        if parsed is None:
            if len(header) > MAX_WAV_HEADER:
                raise RequestError(POLICY, f"wav header is longer than {MAX_WAV_HEADER} bytes: not a WAV stream")
            return b""
        source, data_offset, data_size = parsed
        self._header.clear()
        if source is None:  # 24-bit or another encoding: decode the whole file
            self._mode = "whole"
            self._whole += header
            return b""
        self._mode = "raw"
        self._source = source
        self.sample_rate = source.sample_rate
        self._data_left = None if data_size in _UNKNOWN_SIZES else data_size
        self._converter = StreamConverter(source, AudioFormat.pcm16(source.sample_rate or 24000))
        return self._convert(header[data_offset:])

    def _decode_whole(self) -> bytes:
        try:
            pcm = decode(bytes(self._whole), self.declared)
        except AudioFormatError as error:
            raise RequestError(POLICY, f"{self.input_format} audio: {error.message}") from None
        if self.sample_rate is None:
            self.sample_rate = pcm.sample_rate
        fresh = pcm.data[self._decoded_bytes :]
        self._decoded_bytes = len(pcm.data)
        return fresh


def _wav_header(data: bytes) -> tuple[AudioFormat | None, int, int] | None:
    """(the raw format of the samples, or None when they must be decoded whole; data offset; data size), or None
    while the header is incomplete."""
    if len(data) < 12:
        return None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RequestError(POLICY, "input_format is wav but the audio does not start with a RIFF/WAVE header")
    position, source, seen_fmt = 12, None, False
    while len(data) >= position + 8:
        chunk, size = struct.unpack_from("<4sI", data, position)
        if chunk == b"data":
            if not seen_fmt:
                raise RequestError(POLICY, "wav audio has no 'fmt ' chunk before its data")
            return source, position + 8, size
        if len(data) < position + 8 + size:
            return None
        if chunk == b"fmt ":
            if size < 16:
                raise RequestError(POLICY, "wav 'fmt ' chunk is too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, position + 8)
            if tag == _EXTENSIBLE and size >= 26:
                tag = struct.unpack_from("<H", data, position + 8 + 24)[0]
            encoding = _WAV_STREAMABLE.get((tag, bits))
            if not channels or not rate:
                raise RequestError(POLICY, f"wav header says {channels} channels at {rate} Hz")
            try:
                source = AudioFormat(encoding, rate, channels) if encoding else None  # type: ignore[arg-type]
            except AudioFormatError as error:
                raise RequestError(POLICY, f"wav audio: {error.message}") from None
            seen_fmt = True
        position += 8 + size + (size & 1)
    return None
