"""speechbridge.audio: formats, G.711, containers, resampling, streaming conversion and framing."""

from __future__ import annotations

import importlib.abc
import io
import struct
import sys
import warnings
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from speechbridge.audio import (
    AudioFormat,
    Framer,
    PCMAudio,
    StreamConverter,
    StreamResampler,
    alaw_decode,
    alaw_encode,
    decode,
    duration_of,
    encode,
    read_file,
    resample,
    sniff,
    ulaw_decode,
    ulaw_encode,
    wav_header,
)
from speechbridge.errors import AudioFormatError, ConfigError, MissingDependency

ALL_INT16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))
_WAV = wav_header(16000, 4) + b"\x00\x00\x01\x00"


def tone(seconds: float, rate: int, freqs: tuple[float, ...] = (440.0, 1250.0), amplitude: float = 0.4) -> np.ndarray:
    """A float signal in [-1, 1]: a few sines."""
    t = np.arange(round(seconds * rate)) / rate
    signal: np.ndarray = np.sum([np.sin(2 * np.pi * f * t) for f in freqs], axis=0) * (amplitude / len(freqs))
    return signal


def to_int16(signal: np.ndarray) -> np.ndarray:
    values: np.ndarray = np.clip(np.rint(signal * 32768), -32768, 32767).astype("<i2")
    return values


def pcm_audio(seconds: float = 0.5, rate: int = 16000, **kwargs: Any) -> PCMAudio:
    return PCMAudio(to_int16(tone(seconds, rate, **kwargs)).tobytes(), rate)


def samples(audio: PCMAudio | bytes) -> np.ndarray:
    return np.frombuffer(audio.data if isinstance(audio, PCMAudio) else audio, dtype="<i2")


def soundfile_bytes(data: np.ndarray, rate: int, format: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def aligned_correlation(reference: np.ndarray, test: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Normalised correlation of ``test`` with ``reference`` at the best lag (codec delay) up to ``max_lag``."""
    ref, out = reference.astype(float), test.astype(float)
    size = 1 << (len(ref) + len(out)).bit_length()
    cross = np.fft.irfft(np.fft.rfft(out, size) * np.conj(np.fft.rfft(ref, size)), size)[: max_lag + 1]
    lag = int(np.argmax(cross))
    n = min(len(ref), len(out) - lag)
    a, b = ref[:n], out[lag : lag + n]
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)), lag


def peak_frequency(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(float) * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


def random_splits(data: bytes, rng: np.random.Generator, largest: int = 700) -> Iterator[bytes]:
    """``data`` in chunks of random sizes, odd ones included, so samples get cut in half."""
    position = 0
    while position < len(data):
        size = int(rng.integers(1, largest))
        yield data[position : position + size]
        position += size


# --- AudioFormat ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("pcm_16000", AudioFormat("pcm_s16le", 16000)),
        ("PCM_16000", AudioFormat("pcm_s16le", 16000)),
        ("  pcm_8000 ", AudioFormat("pcm_s16le", 8000)),
        ("pcm_s16le_24000", AudioFormat("pcm_s16le", 24000)),
        ("s16le_22050", AudioFormat("pcm_s16le", 22050)),
        ("linear16_16000", AudioFormat("pcm_s16le", 16000)),
        ("pcm16_24000", AudioFormat("pcm_s16le", 24000)),
        ("pcm_16000x2", AudioFormat("pcm_s16le", 16000, 2)),
        ("f32_24000", AudioFormat("pcm_f32le", 24000)),
        ("pcm_f32le_48000", AudioFormat("pcm_f32le", 48000)),
        ("float32_44100x2", AudioFormat("pcm_f32le", 44100, 2)),
        ("mulaw_8000", AudioFormat("mulaw", 8000)),
        ("ulaw_8000", AudioFormat("mulaw", 8000)),
        ("pcm_mulaw_8000", AudioFormat("mulaw", 8000)),
        ("alaw_8000", AudioFormat("alaw", 8000)),
        ("pcm_alaw_16000", AudioFormat("alaw", 16000)),
        ("wav", AudioFormat("wav")),
        ("wav_16000", AudioFormat("wav", 16000)),
        ("flac", AudioFormat("flac")),
        ("opus", AudioFormat("ogg_opus")),
        ("ogg", AudioFormat("ogg_opus")),
        ("ogg_opus_48000", AudioFormat("ogg_opus", 48000)),
        ("mp3_44100", AudioFormat("mp3", 44100)),
    ],
)
def test_parse_spellings(spelling: str, expected: AudioFormat) -> None:
    assert AudioFormat.parse(spelling) == expected


@pytest.mark.parametrize(
    "fmt",
    [
        AudioFormat("pcm_s16le", 16000),
        AudioFormat("pcm_f32le", 24000, 2),
        AudioFormat("mulaw", 8000),
        AudioFormat("alaw", 8000, 3),
        AudioFormat("wav"),
        AudioFormat("ogg_opus", 48000),
        AudioFormat("mp3", 22050),
    ],
)
def test_str_parses_back(fmt: AudioFormat) -> None:
    assert AudioFormat.parse(str(fmt)) == fmt


def test_parse_returns_an_audio_format_as_is() -> None:
    fmt = AudioFormat("mulaw", 8000)
    assert AudioFormat.parse(fmt) is fmt


@pytest.mark.parametrize("spelling", ["aac", "", "pcm-16000", "pcm_abc", "wav_", "mulaw_8000x", "16000", "pcm__16000"])
def test_parse_unknown_names_what_is_accepted(spelling: str) -> None:
    with pytest.raises(AudioFormatError, match="unknown audio format") as info:
        AudioFormat.parse(spelling)
    assert "pcm_<rate>" in str(info.value) and "mulaw_<rate>" in str(info.value)


@pytest.mark.parametrize("spelling", ["pcm", "mulaw", "f32", "alaw"])
def test_parse_raw_without_rate(spelling: str) -> None:
    with pytest.raises(AudioFormatError, match=r"needs a sample rate, e\.g\. .*_16000"):
        AudioFormat.parse(spelling)


@pytest.mark.parametrize("spelling", ["pcm_0", "pcm_999", "pcm_500000", "opus_10"])
def test_parse_bad_rate(spelling: str) -> None:
    with pytest.raises(AudioFormatError, match=r"sample rate .* \(accepted: whole Hz, 1000 to 384000\)"):
        AudioFormat.parse(spelling)


@pytest.mark.parametrize("spelling", ["pcm_16000x0", "pcm_16000x33"])
def test_parse_bad_channels(spelling: str) -> None:
    with pytest.raises(AudioFormatError, match=r"channel count .* \(accepted: 1 to 32\)"):
        AudioFormat.parse(spelling)


def test_constructor_rejects_wrong_types() -> None:
    with pytest.raises(AudioFormatError, match=r"unknown encoding 'aac'.*pcm_s16le"):
        AudioFormat("aac", 16000)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match=r"sample rate 16000\.5"):
        AudioFormat("pcm_s16le", 16000.5)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="channel count True"):
        AudioFormat("pcm_s16le", 16000, True)
    with pytest.raises(AudioFormatError, match="string or AudioFormat, not int"):
        AudioFormat.parse(16000)  # type: ignore[arg-type]


def test_sizes_of_raw_formats() -> None:
    assert AudioFormat.parse("f32_24000x2").frame_width == 8
    assert AudioFormat.parse("mulaw_8000").bytes_for(0.02) == 160
    assert AudioFormat.parse("pcm_16000x2").bytes_for(0.08) == 5120
    assert duration_of(32000, AudioFormat.pcm16(16000)) == 1.0
    with pytest.raises(AudioFormatError, match="wav is a container"):
        AudioFormat("wav").bytes_for(1.0)


def test_pcm_audio_checks_its_data() -> None:
    audio = PCMAudio(b"\x00\x00" * 8000, 16000)
    assert audio.duration_s == 0.5 and audio.format == AudioFormat.pcm16(16000)
    with pytest.raises(AudioFormatError, match="even number of bytes, not 3"):
        PCMAudio(b"abc", 16000)
    with pytest.raises(AudioFormatError, match="sample rate 0"):
        PCMAudio(b"", 0)


# --- G.711 ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audioop() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("audioop")


def test_ulaw_bit_exact_with_audioop(audioop: Any) -> None:
    assert ulaw_encode(ALL_INT16) == audioop.lin2ulaw(ALL_INT16, 2)
    assert ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_bit_exact_with_audioop(audioop: Any) -> None:
    assert alaw_encode(ALL_INT16) == audioop.lin2alaw(ALL_INT16, 2)
    assert alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(("enc", "dec"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip(enc: Any, dec: Any) -> None:
    decoded = dec(ALL_CODES)
    assert dec(enc(decoded)) == decoded  # every code's value encodes back to the same value
    codes = enc(ALL_INT16)
    assert len(codes) == 65536 and len(set(codes)) >= 255
    signal = to_int16(tone(0.25, 8000, amplitude=0.8))
    error = samples(dec(enc(signal.tobytes()))).astype(float) - signal
    snr = 10 * np.log10(np.sum(signal.astype(float) ** 2) / np.sum(error**2))
    assert snr > 30


def test_g711_matches_libsndfile_wav_codecs() -> None:
    for subtype, dec in (("ULAW", ulaw_decode), ("ALAW", alaw_decode)):
        values = samples(dec(ALL_CODES))
        data = soundfile_bytes(values, 8000, "WAV", subtype)
        assert decode(data).data == values.tobytes()


# --- WAV -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize(
    ("subtype", "written", "tolerance"),
    [
        ("PCM_16", "int16", 0),
        ("PCM_24", "int32", 0),
        ("PCM_32", "int32", 0),
        ("FLOAT", "float32", 0),
        ("DOUBLE", "float64", 0),
        ("PCM_U8", "int16", 256),
        ("ULAW", "int16", 1024),
        ("ALAW", "int16", 1024),
    ],
)
def test_wav_subtypes_and_rates(rate: int, subtype: str, written: str, tolerance: int) -> None:
    reference = to_int16(tone(0.1, rate))
    data = {
        "int16": reference,
        "int32": reference.astype(np.int32) << 16,
        "float32": reference.astype(np.float32) / 32768,
        "float64": reference / 32768.0,
    }[written]
    audio = decode(soundfile_bytes(data, rate, "WAV", subtype))
    assert audio.sample_rate == rate
    assert len(audio.data) == 2 * len(reference)
    assert np.abs(samples(audio).astype(int) - reference).max() <= tolerance


def _stdlib_wav(frames: bytes, rate: int, width: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(width)
        file.setframerate(rate)
        file.writeframes(frames)
    return buffer.getvalue()


def test_wav_written_by_stdlib_wave_at_every_width() -> None:
    reference = to_int16(tone(0.1, 16000)).astype(np.int64)
    u8 = ((reference >> 8) + 128).astype(np.uint8).tobytes()
    assert samples(decode(_stdlib_wav(u8, 16000, 1))).tolist() == ((reference >> 8) << 8).tolist()
    assert samples(decode(_stdlib_wav(reference.astype("<i2").tobytes(), 16000, 2))).tolist() == reference.tolist()
    s24 = reference * 256 + 100  # a little below half an LSB of 16-bit: rounds back to the reference
    s24_bytes = b"".join(int(v).to_bytes(3, "little", signed=True) for v in s24)
    assert samples(decode(_stdlib_wav(s24_bytes, 16000, 3))).tolist() == reference.tolist()
    s32 = (reference * 65536 + 1000).astype("<i4").tobytes()
    assert np.abs(samples(decode(_stdlib_wav(s32, 16000, 4))) - reference).max() <= 1


def test_stereo_wav_is_downmixed() -> None:
    left, right = to_int16(tone(0.2, 16000)), to_int16(tone(0.2, 16000, freqs=(300.0,), amplitude=0.3))
    expected = np.rint((left.astype(float) + right) / 2).astype("<i2")
    stereo = np.stack([left, right], axis=1)
    assert decode(soundfile_bytes(stereo, 16000, "WAV", "PCM_16")).data == expected.tobytes()
    as_float = decode(soundfile_bytes(stereo / 32768.0, 16000, "WAV", "FLOAT"))
    assert np.abs(samples(as_float).astype(int) - expected).max() <= 1
    interleaved = stereo.astype("<i2").tobytes()
    assert decode(_stdlib_wav(interleaved, 16000, 2, channels=2)).data == expected.tobytes()


def test_float_wav_beyond_full_scale_is_clipped() -> None:
    data = soundfile_bytes(np.array([2.0, -2.0, 0.5, -1.0], dtype=np.float32), 8000, "WAV", "FLOAT")
    assert samples(decode(data)).tolist() == [32767, -32768, 16384, -32768]


def test_encode_wav_is_exact() -> None:
    audio = pcm_audio(rate=24000)
    data = encode(audio, "wav")
    assert sniff(data) == AudioFormat("wav") and len(data) == 44 + len(audio.data)
    assert decode(data) == audio
    read, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 24000 and read.tobytes() == audio.data
    assert decode(encode(audio, "wav_16000")).sample_rate == 16000


# --- raw -----------------------------------------------------------------------------------------------------


def test_raw_pcm16_mono_passes_through() -> None:
    audio = pcm_audio()
    assert decode(audio.data, "pcm_16000") == audio
    assert encode(audio, "pcm_16000") == audio.data


def test_raw_multichannel_is_downmixed() -> None:
    channels = np.stack([to_int16(tone(0.1, 8000, freqs=(f,))) for f in (200.0, 700.0, 1500.0)], axis=1)
    expected = np.rint(channels.astype(float).mean(axis=1)).astype("<i2")
    assert decode(channels.tobytes(), "pcm_8000x3").data == expected.tobytes()
    as_float = (channels.astype("<f4") / 32768.0).tobytes()
    assert decode(as_float, "f32_8000x3").data == expected.tobytes()
    two = channels[:, :2]
    for name, enc, dec in (("mulaw", ulaw_encode, ulaw_decode), ("alaw", alaw_encode, alaw_decode)):
        codes = enc(two.tobytes())
        decoded = samples(dec(codes)).reshape(-1, 2).astype(float)
        assert decode(codes, f"{name}_8000x2").data == np.rint(decoded.mean(axis=1)).astype("<i2").tobytes()


def test_raw_f32_round_trip_is_exact() -> None:
    values = np.frombuffer(ALL_INT16, dtype="<i2")
    audio = PCMAudio(ALL_INT16, 16000)
    f32 = encode(audio, "f32_16000")
    assert np.array_equal(np.frombuffer(f32, dtype="<f4"), values / np.float32(32768))
    assert decode(f32, "f32_16000") == audio


@pytest.mark.parametrize(("name", "dec"), [("mulaw", ulaw_decode), ("alaw", alaw_decode)])
def test_raw_g711_decode(name: str, dec: Any) -> None:
    assert decode(ALL_CODES, f"{name}_8000") == PCMAudio(dec(ALL_CODES), 8000)
    audio = pcm_audio(rate=8000)
    assert encode(audio, f"{name}_8000") == (ulaw_encode if name == "mulaw" else alaw_encode)(audio.data)


def test_raw_f32_with_nan_is_refused() -> None:
    data = np.array([0.1, np.nan, 0.2], dtype="<f4").tobytes()
    with pytest.raises(AudioFormatError, match="NaN or infinite"):
        decode(data, "f32_16000")


@pytest.mark.parametrize(
    ("length", "spelling", "frame"),
    [(3, "pcm_16000", 2), (6, "f32_16000", 4), (7, "pcm_16000x2", 4), (5, "mulaw_8000x2", 2), (12, "f32_8000x2", 8)],
)
def test_raw_partial_sample_frames(length: int, spelling: str, frame: int) -> None:
    with pytest.raises(AudioFormatError, match=f"truncated: {length} bytes is not a whole number of {frame}-byte"):
        decode(b"\x01" * length, spelling)


def test_encode_raw_resamples_to_the_format_rate() -> None:
    codes = encode(pcm_audio(0.5, 16000), "mulaw_8000")
    assert len(codes) == 4000
    assert len(encode(pcm_audio(0.5, 16000), "f32_24000")) == 12000 * 4


# --- compressed containers -----------------------------------------------------------------------------------


def test_flac_round_trip_is_lossless() -> None:
    audio = pcm_audio(0.5, 22050)
    data = encode(audio, "flac")
    assert sniff(data) == AudioFormat("flac")
    assert decode(data) == audio
    assert decode(data, "flac") == audio


@pytest.mark.parametrize(
    ("spelling", "rate", "out_rate", "min_correlation"),
    [
        ("opus", 16000, 16000, 0.95),
        ("opus", 22050, 24000, 0.95),
        ("ogg_opus_48000", 16000, 48000, 0.95),
        ("mp3", 16000, 16000, 0.99),
        ("mp3", 10000, 11025, 0.99),
        ("mp3_44100", 44100, 44100, 0.99),
    ],
)
def test_lossy_round_trip(spelling: str, rate: int, out_rate: int, min_correlation: float) -> None:
    audio = pcm_audio(1.0, rate)
    data = encode(audio, spelling)
    assert sniff(data) == AudioFormat("mp3" if "mp3" in spelling else "ogg_opus")
    assert len(data) < len(audio.data) / 3
    back = decode(data)
    assert back.sample_rate == out_rate
    assert abs(back.duration_s - audio.duration_s) < 0.06
    reference = samples(resample(audio, out_rate))
    correlation, lag = aligned_correlation(reference, samples(back), max_lag=out_rate // 20)
    assert correlation > min_correlation, (correlation, lag)


def test_opus_snr_sanity() -> None:
    audio = pcm_audio(1.0, 16000, freqs=(440.0,), amplitude=0.5)
    back = samples(decode(encode(audio, "opus")))
    reference = samples(audio)
    correlation, lag = aligned_correlation(reference, back, max_lag=800)
    n = min(len(reference), len(back) - lag)
    error = back[lag : lag + n].astype(float) - reference[:n]
    snr = 10 * np.log10(np.sum(reference[:n].astype(float) ** 2) / np.sum(error**2))
    assert snr > 10 and correlation > 0.95


def test_encode_refuses_rates_a_codec_cannot_run_at() -> None:
    with pytest.raises(AudioFormatError, match=r"Ogg cannot run at 22050 Hz \(accepted: 8000, 12000, 16000, 24000"):
        encode(pcm_audio(), "opus_22050")
    with pytest.raises(AudioFormatError, match=r"MP3 cannot run at 10000 Hz \(accepted: 8000, 11025"):
        encode(pcm_audio(), "mp3_10000")


def test_encode_refuses_channels() -> None:
    with pytest.raises(AudioFormatError, match=r"cannot encode pcm_16000x2: speechbridge produces mono"):
        encode(pcm_audio(), "pcm_16000x2")


# --- bad audio -----------------------------------------------------------------------------------------------


def _wav(seconds: float = 0.2) -> bytes:
    return encode(pcm_audio(seconds), "wav")


@pytest.mark.parametrize("format", [None, "pcm_16000", "wav", "mulaw_8000"])
def test_empty_audio(format: str | None) -> None:
    with pytest.raises(AudioFormatError, match=r"audio is empty \(accepted: WAV .*FLAC, Ogg/Opus, MP3"):
        decode(b"", format)


def test_truncated_wav_data_chunk() -> None:
    data = _wav()
    with pytest.raises(AudioFormatError, match="WAV audio is truncated: its data chunk is 1000 bytes short"):
        decode(data[:-1000])
    with pytest.raises(AudioFormatError, match="WAV audio is truncated or corrupt: it has no data chunk"):
        decode(data[:40])
    with pytest.raises(AudioFormatError, match="WAV audio holds no samples"):
        decode(wav_header(16000, 0))


def test_corrupt_wav_header() -> None:
    data = bytearray(_wav())
    data[12:16] = b"junk"  # the fmt chunk loses its name
    with pytest.raises(AudioFormatError, match="cannot decode WAV audio, it is truncated, corrupt or not audio"):
        decode(bytes(data))
    data = bytearray(_wav())
    data[20:22] = struct.pack("<H", 0x1234)  # an unknown codec tag
    with pytest.raises(AudioFormatError, match="cannot decode WAV audio") as info:
        decode(bytes(data))
    assert "accepted: WAV (8/16/24/32-bit PCM, float" in str(info.value)


def test_unrecognised_bytes() -> None:
    with pytest.raises(AudioFormatError, match=r"unrecognised audio: not WAV, FLAC, Ogg or MP3; .*pcm_<rate>"):
        decode(b"hello, this is plainly text and not audio")
    silence = b"\xff\xff" * 800  # raw PCM of -1 samples starts with MPEG-like sync bits
    assert sniff(silence) is None
    with pytest.raises(AudioFormatError, match="unrecognised audio"):
        decode(silence)


def test_unsupported_container() -> None:
    aiff = soundfile_bytes(to_int16(tone(0.1, 16000)), 16000, "AIFF", "PCM_16")
    with pytest.raises(AudioFormatError, match="unrecognised audio"):
        decode(aiff)


def test_container_given_for_text() -> None:
    with pytest.raises(AudioFormatError, match=r"cannot decode MP3 audio, .*\(.*\); accepted: WAV"):
        decode(b"definitely not an mp3 file, just some text" * 3, "mp3")


@pytest.mark.parametrize(
    "prefix",
    [b"RIFF\x00\x01\x00\x00WAVEfmt ", b"RIFF\xff\xff\xff\xffWAVE", b"fLaC", b"fLaC\x00\x00\x00\x22", b"OggS", b"ID3",
     b"\xff\xfb\x90\x64", b"\xff\xf3\x48\xc4", b"OggS\x00\x02" + bytes(20)],
)  # fmt: skip
def test_garbage_after_a_container_magic_is_a_format_error(prefix: bytes) -> None:
    rng = np.random.default_rng(len(prefix))
    for length in (0, 3, 40, 300, 2000):
        for _ in range(3):
            data = prefix + rng.integers(0, 256, length, dtype=np.uint8).tobytes()
            with pytest.raises(AudioFormatError):
                decode(data)


def test_damaged_real_files_are_format_errors() -> None:
    rng = np.random.default_rng(7)
    audio = pcm_audio(0.3)
    for spelling in ("wav", "flac", "opus", "mp3"):
        data = encode(audio, spelling)
        for _ in range(8):
            damaged = bytearray(data)
            start = int(rng.integers(0, min(len(data) - 64, 200)))
            damaged[start : start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
            try:
                decode(bytes(damaged))
            except AudioFormatError:
                pass  # anything but another exception type is fine: some damage leaves decodable audio


def test_truncated_flac() -> None:
    data = encode(pcm_audio(1.0), "flac")
    for cut in (len(data) // 2, len(data) - 5, 60):
        with pytest.raises(AudioFormatError, match="FLAC audio"):
            decode(data[:cut])


def test_flac_without_length_is_refused_clearly() -> None:
    data = bytearray(encode(pcm_audio(0.3), "flac"))
    (packed,) = struct.unpack_from(">Q", data, 18)
    struct.pack_into(">Q", data, 18, packed & ~((1 << 36) - 1))  # STREAMINFO total samples: 0, unknown
    with pytest.raises(AudioFormatError, match="does not say how many samples it holds"):
        decode(bytes(data))


def _ogg_page_ends(data: bytes) -> list[int]:
    ends, offset = [], 0
    while offset < len(data):
        segments = data[offset + 26]
        offset += 27 + segments + sum(data[offset + 27 : offset + 27 + segments])
        ends.append(offset)
    return ends


def test_truncated_ogg() -> None:
    data = encode(pcm_audio(2.0), "opus")
    page_ends = _ogg_page_ends(data)
    assert page_ends[-1] == len(data) and len(page_ends) >= 3
    with pytest.raises(AudioFormatError, match="Ogg audio is truncated: its last page is 7 bytes short"):
        decode(data[:-7])
    with pytest.raises(AudioFormatError, match="Ogg audio is truncated: it stops before the page that ends"):
        decode(data[: page_ends[-2]])
    with pytest.raises(AudioFormatError, match="Ogg audio is truncated or corrupt: no whole page header at byte"):
        decode(data[: page_ends[1] + 10])
    with pytest.raises(AudioFormatError, match="Ogg audio is truncated or corrupt"):
        decode(data + b"trailing junk")


def test_truncated_mp3() -> None:
    data = encode(pcm_audio(1.0), "mp3")
    with pytest.raises(AudioFormatError, match="MP3 audio"):
        decode(data[: len(data) // 2])


def _first_mp3_frame_bytes(data: bytes) -> int:
    """Length of the first MPEG Layer III frame (the encoder's Xing/Info frame)."""
    mpeg1 = bool(data[1] & 0x08)
    kbps = (
        (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
        if mpeg1
        else (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
    )[data[2] >> 4]
    rate = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}[(data[1] >> 3) & 3]
    return (144 if mpeg1 else 72) * kbps * 1000 // rate[(data[2] >> 2) & 3] + ((data[2] >> 1) & 1)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_variable_bitrate_mp3_without_length_header_is_not_cut_short_silently(rate: int) -> None:
    data = encode(pcm_audio(1.0, rate), "mp3")
    assert b"Xing" in data[:400]
    without_header = data[_first_mp3_frame_bytes(data) :]
    assert sniff(without_header) == AudioFormat("mp3")
    with pytest.raises(AudioFormatError, match=r"MP3 audio holds \d+ samples but only \d+ can be decoded"):
        decode(without_header)


def test_mp3_with_id3_tags() -> None:
    audio = pcm_audio(1.0, 22050)
    data = encode(audio, "mp3")
    id3v2 = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + bytes(10)
    id3v1 = b"TAG" + bytes(125)
    for tagged in (id3v2 + data, data + id3v1, id3v2 + data + id3v1):
        assert sniff(tagged) == AudioFormat("mp3")
        assert len(decode(tagged).data) == len(audio.data)


def test_libsndfile_errors_never_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_read(*args: Any, **kwargs: Any) -> Any:
        raise sf.LibsndfileError(1, "while reading: ")

    monkeypatch.setattr(sf.SoundFile, "read", broken_read)
    with pytest.raises(AudioFormatError, match=r"cannot decode FLAC audio.*\(Format not recognised\)"):
        decode(encode(pcm_audio(0.1), "flac"))


# --- files ---------------------------------------------------------------------------------------------------


def test_read_file(tmp_path: Path) -> None:
    audio = pcm_audio()
    (tmp_path / "a.wav").write_bytes(encode(audio, "wav"))
    (tmp_path / "a.ulaw").write_bytes(encode(audio, "mulaw_16000"))
    (tmp_path / "bad.wav").write_bytes(encode(audio, "wav")[:-100])
    assert read_file(tmp_path / "a.wav") == audio
    assert read_file(str(tmp_path / "a.ulaw"), "mulaw_16000") == decode(encode(audio, "mulaw_16000"), "mulaw_16000")
    with pytest.raises(AudioFormatError, match=r"bad\.wav: WAV audio is truncated"):
        read_file(tmp_path / "bad.wav")
    with pytest.raises(AudioFormatError, match=r"cannot read '.*missing\.wav': No such file or directory"):
        read_file(tmp_path / "missing.wav")
    with pytest.raises(AudioFormatError, match="cannot read"):
        read_file(tmp_path)


# --- resampling ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), [(16000, 8000), (8000, 48000), (44100, 16000), (24000, 22050)])
def test_resample_keeps_duration_and_pitch(source: int, target: int) -> None:
    audio = pcm_audio(1.0, source, freqs=(700.0,))
    out = resample(audio, target)
    assert out.sample_rate == target
    assert abs(len(out.data) // 2 - target) <= 1
    assert abs(peak_frequency(samples(out), target) - 700.0) < 3


def test_resample_edge_cases() -> None:
    audio = pcm_audio()
    assert resample(audio, 16000) == audio
    assert resample(PCMAudio(b"", 16000), 8000) == PCMAudio(b"", 8000)
    with pytest.raises(AudioFormatError, match="sample rate 0"):
        resample(audio, 0)


@pytest.mark.parametrize(("source", "target"), [(16000, 8000), (8000, 16000), (44100, 16000), (24000, 48000)])
def test_stream_resampler_matches_one_shot(source: int, target: int) -> None:
    audio = pcm_audio(1.0, source)
    one_shot = samples(resample(audio, target))
    rng = np.random.default_rng(source + target)
    resampler = StreamResampler(source, target)
    position, streamed = 0, b""
    while position < len(audio.data):
        size = 2 * int(rng.integers(1, 600))
        streamed += resampler.process(audio.data[position : position + size])
        position += size
    streamed += resampler.flush()
    out = samples(streamed)
    assert abs(len(out) - len(one_shot)) <= 4
    n = min(len(out), len(one_shot))
    assert np.abs(out[:n].astype(int) - one_shot[:n]).max() <= 4  # continuous: no gap, click or repeat anywhere


def test_stream_resampler_restarts_after_flush() -> None:
    audio = pcm_audio(0.2, 16000)
    resampler = StreamResampler(16000, 8000)
    first = resampler.process(audio.data) + resampler.flush()
    assert resampler.flush() == b""
    second = resampler.process(audio.data) + resampler.flush()
    assert first == second and len(first) == 3200


def test_stream_resampler_rejects_bad_input() -> None:
    with pytest.raises(AudioFormatError, match="whole samples: 3 bytes is odd"):
        StreamResampler(16000, 8000).process(b"abc")
    with pytest.raises(AudioFormatError, match="sample rate 0"):
        StreamResampler(0, 8000)


# --- streaming conversion ------------------------------------------------------------------------------------


def _source_bytes(fmt: AudioFormat, seconds: float = 0.2) -> bytes:
    assert fmt.sample_rate
    channels = [to_int16(tone(seconds, fmt.sample_rate, freqs=(300.0 + 200 * i,))) for i in range(fmt.channels)]
    interleaved = np.stack(channels, axis=1).reshape(-1).astype("<i2").tobytes()
    return {
        "pcm_s16le": lambda: interleaved,
        "pcm_f32le": lambda: (np.frombuffer(interleaved, "<i2").astype("<f4") / 32768.0).tobytes(),
        "mulaw": lambda: ulaw_encode(interleaved),
        "alaw": lambda: alaw_encode(interleaved),
    }[fmt.encoding]()


def _convert(converter: StreamConverter, chunks: Iterator[bytes] | list[bytes]) -> bytes:
    return b"".join(converter.process(chunk) for chunk in chunks) + converter.flush()


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("pcm_16000x2", "pcm_16000"),
        ("f32_16000", "pcm_16000"),
        ("f32_24000x2", "mulaw_24000"),
        ("mulaw_8000", "pcm_8000"),
        ("alaw_8000", "f32_8000"),
        ("pcm_16000", "alaw_16000"),
    ],
)
def test_stream_converter_same_rate_is_exact_and_split_invariant(source: str, target: str) -> None:
    src, dst = AudioFormat.parse(source), AudioFormat.parse(target)
    data = _source_bytes(src)
    expected = encode(decode(data, src), dst)
    rng = np.random.default_rng(3)
    for _ in range(3):
        assert _convert(StreamConverter(src, dst), random_splits(data, rng)) == expected
    assert _convert(StreamConverter(src, dst), [data[i : i + 1] for i in range(len(data))]) == expected


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("pcm_24000", "pcm_16000"),
        ("f32_48000", "pcm_16000"),
        ("pcm_16000x2", "mulaw_8000"),
        ("mulaw_8000", "pcm_16000"),
    ],
)
def test_stream_converter_resampling_is_split_invariant(source: str, target: str) -> None:
    src, dst = AudioFormat.parse(source), AudioFormat.parse(target)
    data = _source_bytes(src)
    whole = decode(_convert(StreamConverter(src, dst), [data]), dst)
    one_shot = resample(decode(data, src), dst.sample_rate or 0)
    rng = np.random.default_rng(5)
    split = decode(_convert(StreamConverter(src, dst), random_splits(data, rng)), dst)
    for out in (whole, split):
        assert abs(len(out.data) - len(one_shot.data)) <= 8
        n = min(len(out.data), len(one_shot.data)) // 2
        tolerance = 4 if dst.encoding == "pcm_s16le" else 700  # mu-law steps are coarse near full scale
        assert np.abs(samples(out)[:n].astype(int) - samples(one_shot)[:n]).max() <= tolerance


@pytest.mark.parametrize("spelling", ["pcm_16000", "mulaw_8000", "f32_24000x2", "wav", "opus"])
def test_stream_converter_passthrough(spelling: str) -> None:
    fmt = AudioFormat.parse(spelling)
    converter = StreamConverter(fmt, fmt)
    assert converter.process(b"abc") == b"abc"
    assert converter.flush() == b""


def test_stream_converter_refuses_what_it_cannot_do() -> None:
    with pytest.raises(AudioFormatError, match="live conversion takes raw audio, not wav"):
        StreamConverter(AudioFormat("wav"), AudioFormat.pcm16(16000))
    with pytest.raises(AudioFormatError, match="not mp3"):
        StreamConverter(AudioFormat.pcm16(16000), AudioFormat("mp3"))
    with pytest.raises(AudioFormatError, match="cannot stream into pcm_16000x2: speechbridge produces mono"):
        StreamConverter(AudioFormat.pcm16(16000), AudioFormat.parse("pcm_16000x2"))


def test_stream_converter_flags_a_partial_sample_at_the_end() -> None:
    converter = StreamConverter(AudioFormat.parse("f32_16000"), AudioFormat.pcm16(16000))
    assert converter.process(b"\x00" * 10) == b"\x00" * 4
    with pytest.raises(AudioFormatError, match=r"f32_16000 stream ended inside a sample: 2 stray bytes .*4-byte"):
        converter.flush()
    assert converter.flush() == b""


# --- framing -------------------------------------------------------------------------------------------------


def test_framer_cuts_exact_frames() -> None:
    framer = Framer(4)
    assert framer.push(b"abc") == []
    assert framer.pending == 3
    assert framer.push(b"defghij") == [b"abcd", b"efgh"]
    assert framer.push(b"klmnop") == [b"ijkl", b"mnop"]
    assert framer.push(b"q") == [] and framer.rest() == b"q"
    assert framer.pending == 0 and framer.rest() == b""


def test_framer_push_is_eager() -> None:
    framer = Framer(2)
    framer.push(b"xyz")  # nothing consumes the result: the data must still be kept
    assert framer.pending == 1 and framer.rest() == b"z"


def test_framer_keeps_every_byte() -> None:
    data = np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    framer = Framer(320)
    frames = [frame for chunk in random_splits(data, np.random.default_rng(2)) for frame in framer.push(chunk)]
    assert all(len(frame) == 320 for frame in frames)
    assert b"".join(frames) + framer.rest() == data


@pytest.mark.parametrize(
    ("spelling", "frame_ms", "frame_bytes"),
    [("pcm_16000", 80.0, 2560), ("mulaw_8000", 80.0, 640), ("f32_24000x2", 80.0, 15360), ("pcm_24000", 20, 960),
     ("pcm_8000", 0.01, 2)],
)  # fmt: skip
def test_framer_for_format(spelling: str, frame_ms: float, frame_bytes: int) -> None:
    assert Framer.for_format(AudioFormat.parse(spelling), frame_ms).frame_bytes == frame_bytes


def test_framer_default_is_80_ms() -> None:
    assert Framer.for_format(AudioFormat.pcm16(16000)).frame_bytes == 2560


def test_framer_rejects_bad_sizes() -> None:
    with pytest.raises(ConfigError, match="positive number of bytes, not 0"):
        Framer(0)
    with pytest.raises(ConfigError, match="positive number of milliseconds, not -5"):
        Framer.for_format(AudioFormat.pcm16(16000), -5)
    with pytest.raises(AudioFormatError, match="container"):
        Framer.for_format(AudioFormat("wav"))


# --- WAV header ----------------------------------------------------------------------------------------------


def test_streaming_wav_header_is_decodable() -> None:
    audio = pcm_audio(0.3, 24000)
    header = wav_header(24000)
    assert len(header) == 44 and header[4:8] == b"\xff\xff\xff\xff" and header[40:44] == b"\xff\xff\xff\xff"
    data = header + audio.data
    assert decode(data) == audio
    read, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 24000 and read.tobytes() == audio.data


def test_sized_wav_header() -> None:
    header = wav_header(8000, 1600)
    assert struct.unpack_from("<I", header, 4)[0] == 1636 and struct.unpack_from("<I", header, 40)[0] == 1600
    assert decode(header + b"\x01\x00" * 800) == PCMAudio(b"\x01\x00" * 800, 8000)
    with wave.open(io.BytesIO(header + b"\x00" * 1600)) as file:
        assert (file.getframerate(), file.getsampwidth(), file.getnchannels(), file.getnframes()) == (8000, 2, 1, 800)
    with pytest.raises(AudioFormatError, match="WAV data chunk holds 0 to"):
        wav_header(8000, 2**32)


# --- without the audio extra ---------------------------------------------------------------------------------


@pytest.fixture
def no_audio_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("numpy", "soxr", "soundfile"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError


@pytest.mark.parametrize(
    ("call", "module"),
    [
        (lambda: decode(_WAV), "soundfile"),
        (lambda: encode(PCMAudio(b"\x00\x00" * 10, 16000), "flac"), "soundfile"),
        (lambda: ulaw_encode(b"\x00\x00"), "numpy"),
        (lambda: decode(b"\x00\x00", "mulaw_8000"), "numpy"),
        (lambda: decode(b"\x00\x00" * 2, "pcm_16000x2"), "numpy"),
        (lambda: resample(PCMAudio(b"\x00\x00" * 10, 16000), 8000), "soxr"),
        (lambda: StreamConverter(AudioFormat.pcm16(16000), AudioFormat.pcm16(8000)), "soxr"),
    ],
)
def test_missing_audio_extra(monkeypatch: pytest.MonkeyPatch, call: Any, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(MissingDependency, match=rf"'{module}' package: pip install 'speechbridge\[audio\]'") as info:
        call()
    assert info.value.extra == "audio" and info.value.module == module


class _BrokenLibsndfile(importlib.abc.MetaPathFinder):
    """Imports ``soundfile`` the way a machine without libsndfile does: OSError."""

    def find_spec(self, name: str, *args: Any) -> None:
        if name == "soundfile":
            raise OSError("cannot load library 'libsndfile.so': No such file or directory")


def test_missing_libsndfile_is_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "soundfile")
    monkeypatch.setattr(sys, "meta_path", [_BrokenLibsndfile(), *sys.meta_path])
    with pytest.raises(MissingDependency, match="soundfile"):
        decode(_WAV)


@pytest.mark.usefixtures("no_audio_extra")
def test_audio_already_in_format_needs_no_extra() -> None:
    audio = PCMAudio(b"\x01\x00\x02\x00" * 100, 16000)
    assert decode(audio.data, "pcm_16000") == audio
    assert encode(audio, "pcm_16000") == audio.data
    assert encode(audio, "wav") == wav_header(16000, 400) + audio.data
    assert resample(audio, 16000) == audio
    converter = StreamConverter(AudioFormat.pcm16(16000), AudioFormat.pcm16(16000))
    assert Framer.for_format(AudioFormat.pcm16(16000)).push(converter.process(audio.data)) == []
