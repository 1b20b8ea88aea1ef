"""Fuzzing the audio decoders: any bytes, and real WAV, FLAC, Ogg/Opus and MP3 files with their headers mutated,
truncated or corrupted, decode to well-formed 16-bit PCM or raise AudioFormatError, quickly and in bounded memory.
Streaming conversion and framing give the same audio however the stream is cut."""

from __future__ import annotations

import io
import struct
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from speechbridge.audio import (
    RAW_ENCODINGS,
    AudioFormat,
    Framer,
    PCMAudio,
    StreamConverter,
    alaw_decode,
    alaw_encode,
    codec,
    decode,
    encode,
    identify,
    read_file,
    resample,
    ulaw_decode,
    ulaw_encode,
    wav_header,
)
from speechbridge.errors import AudioFormatError
from speechbridge.testing.fuzz import check_typed, load_profile, typed_or_error

load_profile()

RATE: Final = 16000
TONE: Final = PCMAudio(
    (np.sin(np.arange(RATE // 10) * 2 * np.pi * 440 / RATE) * 12000).astype("<i2").tobytes(), RATE
)  # 0.1 s


def _soundfile(subtype: str, channels: int = 1, container: str = "WAV", rate: int = RATE) -> bytes:
    samples = np.frombuffer(TONE.data, dtype="<i2")
    buffer = io.BytesIO()
    sf.write(buffer, np.repeat(samples[:, None], channels, axis=1), rate, format=container, subtype=subtype)
    return buffer.getvalue()


WAVS: Final = [
    *(_soundfile(subtype) for subtype in ("PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT", "DOUBLE", "ULAW", "ALAW")),
    _soundfile("PCM_16", channels=2),
    _soundfile("FLOAT", channels=3),
    wav_header(RATE) + TONE.data,  # a streaming header: sizes unknown
]
CONTAINERS: Final = [
    encode(TONE, "flac"),
    encode(TONE, "opus"),
    encode(TONE, "mp3"),
    _soundfile("PCM_24", channels=2, container="FLAC"),
]
WAV_FIELDS: Final = {  # offset, struct format of the canonical 44-byte header
    "riff_size": (4, "<I"),
    "fmt_size": (16, "<I"),
    "format_tag": (20, "<H"),
    "channels": (22, "<H"),
    "sample_rate": (24, "<I"),
    "byte_rate": (28, "<I"),
    "block_align": (32, "<H"),
    "bits": (34, "<H"),
    "data_size": (40, "<I"),
}
FORMATS: Final = [None, "wav", "flac", "mp3", "opus", "pcm_16000", "pcm_8000x2", "f32_24000", "mulaw_8000", "alaw_8000"]


@st.composite
def mutated_wav(draw: st.DrawFn) -> bytes:
    """A real WAV with header fields set to anything, then maybe truncated or with bytes flipped."""
    data = bytearray(draw(st.sampled_from(WAVS)))
    for _ in range(draw(st.integers(1, 3))):
        offset, layout = WAV_FIELDS[draw(st.sampled_from(list(WAV_FIELDS)))]
        limit = 0xFFFF if layout == "<H" else 0xFFFFFFFF
        value = draw(st.sampled_from((0, 1, 2, 3, 6, 7, 8, 24, 32, 0xFFFE, limit, limit - 1)) | st.integers(0, limit))
        struct.pack_into(layout, data, offset, value)
    return _damaged(draw, bytes(data))


@st.composite
def mutated_container(draw: st.DrawFn) -> bytes:
    """A real FLAC, Ogg/Opus or MP3 file, truncated, with bytes flipped, or with a slice repeated."""
    return _damaged(draw, draw(st.sampled_from(CONTAINERS)), always=True)


def _damaged(draw: st.DrawFn, data: bytes, *, always: bool = False) -> bytes:
    damage = draw(st.sampled_from(("truncate", "flip", "splice") if always else ("none", "truncate", "flip", "splice")))
    if damage == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if damage == "flip":
        flipped = bytearray(data)
        for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            flipped[position] ^= draw(st.integers(1, 255))
        return bytes(flipped)
    if damage == "splice":
        start = draw(st.integers(0, len(data)))
        return data[:start] + data[draw(st.integers(0, len(data))) :]
    return data


def _decoded(data: bytes, format: str | None) -> None:
    result = typed_or_error(decode, data, format, returns=PCMAudio)
    if isinstance(result, PCMAudio):
        assert len(result.data) % 2 == 0


@given(st.binary(max_size=512), st.sampled_from(FORMATS))
def test_any_bytes_decode_or_raise_audio_format_error(data: bytes, format: str | None) -> None:
    _decoded(data, format)


@given(mutated_wav(), st.sampled_from((None, "wav")))
def test_mutated_wav_headers_decode_or_raise_audio_format_error(data: bytes, format: str | None) -> None:
    _decoded(data, format)


@given(mutated_container(), st.sampled_from((None, "flac", "opus", "mp3")))
def test_damaged_containers_decode_or_raise_audio_format_error(data: bytes, format: str | None) -> None:
    _decoded(data, format)


@given(st.binary(max_size=300) | mutated_wav(), st.sampled_from(FORMATS))
def test_read_file_reads_or_raises_audio_format_error(data: bytes, format: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "audio.bin")
        path.write_bytes(data)
        typed_or_error(read_file, path, format, returns=PCMAudio)


@given(st.text(max_size=30) | st.sampled_from(["pcm_" + "9" * 5000, "pcm_16000x" + "9" * 5000, "wav_0", "mulaw"]))
def test_format_spellings_parse_or_raise_audio_format_error(spec: str) -> None:
    typed_or_error(AudioFormat.parse, spec, returns=AudioFormat)
    typed_or_error(identify, b"\x00\x00", spec, returns=AudioFormat)


@given(st.integers(), st.none() | st.integers(), st.integers(-2, 8), st.integers(-2, 40))
def test_wav_headers_are_built_or_refused(rate: int, size: int | None, width: int, channels: int) -> None:
    typed_or_error(wav_header, rate, size, sample_width=width, channels=channels, returns=bytes)


@given(st.binary(max_size=257))
def test_g711_takes_any_bytes(data: bytes) -> None:
    for decoder in (ulaw_decode, alaw_decode):
        assert len(decoder(data)) == 2 * len(data)
    for encoder in (ulaw_encode, alaw_encode):
        encoded = typed_or_error(encoder, data, returns=bytes)
        assert isinstance(encoded, AudioFormatError) == bool(len(data) % 2)


@given(
    st.binary(max_size=400).map(lambda data: data[: len(data) // 2 * 2]),
    st.sampled_from([RATE, 8000, 22050, 44100]),
    st.sampled_from(["pcm_8000", "mulaw_8000", "f32_16000", "wav", "flac", "mp3", "opus", "opus_44100", "pcm_16000x2"]),
)
def test_any_pcm_encodes_or_raises_audio_format_error(data: bytes, rate: int, format: str) -> None:
    typed_or_error(encode, PCMAudio(data, rate), format, returns=bytes)


# --- streams cut anywhere -----------------------------------------------------------------------------------------

RAW: Final = [AudioFormat(encoding, rate, channels) for encoding in RAW_ENCODINGS for rate in (8000, 16000)
              for channels in (1, 2)]  # fmt: skip


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]


def _converted(source: AudioFormat, target: AudioFormat, pieces: list[bytes]) -> bytes | AudioFormatError:
    try:
        converter = StreamConverter(source, target)
        return b"".join(converter.process(piece) for piece in pieces) + converter.flush()
    except AudioFormatError as error:
        return error


@given(
    st.sampled_from(RAW),
    st.sampled_from([fmt for fmt in RAW if fmt.channels == 1] + [AudioFormat("wav")]),
    st.binary(max_size=600).filter(lambda data: b"\x00\x00\xc0\x7f" not in data),  # no float NaN
    st.lists(st.integers(0, 600), max_size=8),
)
def test_stream_conversion_does_not_depend_on_how_the_stream_is_cut(
    source: AudioFormat, target: AudioFormat, data: bytes, cuts: list[int]
) -> None:
    whole, pieces = _converted(source, target, [data]), _converted(source, target, _cut(data, cuts))
    if isinstance(whole, AudioFormatError) or isinstance(pieces, AudioFormatError):
        assert type(whole) is type(pieces), (whole, pieces)
        return
    if source.sample_rate == target.sample_rate or target.encoding == "wav":
        assert pieces == whole
    else:
        assert len(pieces) == len(whole)  # the resampler's filter state carries across pieces


@given(st.integers(1, 700), st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_framing_keeps_every_byte_in_whole_frames(frame_bytes: int, data: bytes, cuts: list[int]) -> None:
    framer = Framer(frame_bytes)
    frames = [frame for piece in _cut(data, cuts) for frame in framer.push(piece)]
    assert all(len(frame) == frame_bytes for frame in frames)
    assert framer.pending < frame_bytes
    assert b"".join(frames) + framer.rest() == data


@given(st.binary(max_size=200).map(lambda d: d[: len(d) // 2 * 2]), st.integers(-10, 500_000))
def test_resampling_takes_any_rate_or_refuses_it(data: bytes, rate: int) -> None:
    typed_or_error(resample, PCMAudio(data, RATE), rate, returns=PCMAudio)


# --- memory and time bounds ------------------------------------------------------------------------------------


def _peak_bytes(call: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        try:
            result = call()
        except AudioFormatError as error:
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("data_size", [0xFFFFFFF0, 0x7FFFFFFF, 1 << 30])
def test_a_wav_header_claiming_gigabytes_allocates_nothing_of_the_sort(data_size: int) -> None:
    data = bytearray(WAVS[0])
    struct.pack_into("<I", data, 40, data_size)
    struct.pack_into("<I", data, 4, min(0xFFFFFFFF, data_size + 36))
    error, peak = _peak_bytes(lambda: decode(bytes(data)))
    assert isinstance(error, AudioFormatError) and "truncated" in str(error)
    assert peak < 1 << 20


def test_a_flac_header_claiming_hours_is_refused_before_decoding() -> None:
    flac = bytearray(encode(TONE, "flac"))
    streaminfo = 8  # "fLaC", then the STREAMINFO block header; total samples are its bits 108..143
    packed = int.from_bytes(flac[streaminfo + 10 : streaminfo + 18], "big")
    packed = packed & ~((1 << 36) - 1) | ((1 << 36) - 1)
    flac[streaminfo + 10 : streaminfo + 18] = packed.to_bytes(8, "big")
    error, peak = _peak_bytes(lambda: decode(bytes(flac)))
    assert isinstance(error, AudioFormatError) and "limit" in str(error)
    assert peak < 4 << 20


def test_a_decompression_bomb_stops_at_the_decoded_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    silence = np.zeros((48000 * 20, 8), dtype="int16")  # 20 s of 8-channel silence: 15 MB of samples in 14 kB
    buffer = io.BytesIO()
    sf.write(buffer, silence, 48000, format="FLAC", subtype="PCM_16")
    bomb = buffer.getvalue()
    assert len(bomb) < 30_000
    monkeypatch.setattr(codec, "MAX_DECODED_BYTES", 1 << 20)
    error, peak = _peak_bytes(lambda: decode(bomb))
    assert isinstance(error, AudioFormatError) and "limit" in str(error)
    assert peak < 8 << 20  # one read block and the limit, not the 15 MB the file expands to


def test_decoding_under_the_limit_is_unaffected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "MAX_DECODED_BYTES", len(TONE.data))
    check_typed(decode(encode(TONE, "flac")), PCMAudio)
    monkeypatch.setattr(codec, "MAX_DECODED_BYTES", len(TONE.data) - 2)
    with pytest.raises(AudioFormatError, match="limit"):
        decode(encode(TONE, "flac"))


def test_a_wav_with_too_many_channels_is_refused() -> None:
    data = bytearray(WAVS[0])
    struct.pack_into("<HIIH", data, 22, 1000, RATE, RATE * 2000, 2000)
    with pytest.raises(AudioFormatError):
        decode(bytes(data))
