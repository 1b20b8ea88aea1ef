"""Decoding audio bytes to :class:`PCMAudio` and encoding it back, raw or in a container."""

from __future__ import annotations

import io
import os
import struct
from typing import TYPE_CHECKING, Any, Final

from ..errors import AudioFormatError
from ._extras import numpy, soundfile
from .containers import MP3_SLACK, check_ogg, check_wav, mp3_samples, sniff
from .formats import (
    ACCEPTED_AUDIO,
    ACCEPTED_SPELLINGS,
    CONTAINER_NAMES,
    MAX_CHANNELS,
    AudioFormat,
    PCMAudio,
    check_sample_rate,
)
from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .resampling import resample

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_DECODED_BYTES", "decode", "decode_raw", "encode", "encode_raw", "identify", "read_file", "wav_header"]

_SOUNDFILE_CONTAINER: Final = {
    "flac": ("FLAC", "PCM_16"),
    "ogg_opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
_CONTAINER_RATES: Final = {
    "ogg_opus": (8000, 12000, 16000, 24000, 48000),
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
}
_INT16_SUBTYPES: Final = ("PCM_16", "PCM_U8", "PCM_S8", "ULAW", "ALAW")
_READ_BLOCK_SAMPLES: Final = 1 << 16
MAX_DECODED_BYTES: Final = 1 << 30
"""The most 16-bit PCM one container may decode to (9 h 19 min at 16 kHz, 3 h 6 min at 48 kHz): a small compressed
file (hours of FLAC silence take kilobytes) or a lying header cannot make decoding exhaust memory."""
_UNKNOWN_LENGTH: Final = 1 << 62  # libsndfile reports 2**63 - 1 frames for a stream that does not say its length


def _libsndfile_message(exc: Exception) -> str:
    return str(getattr(exc, "error_string", exc)).strip().removeprefix("Error : ").rstrip(".")


def _to_pcm16(samples: np.ndarray) -> bytes:
    """Float (full scale 1.0) or 16-bit samples, frames x channels or frames, to 16-bit mono bytes."""
    np = numpy()
    if samples.dtype.kind == "f":
        if not np.isfinite(samples).all():
            raise AudioFormatError(
                "float audio holds NaN or infinite samples (accepted: finite values, full scale 1.0)"
            )
        samples = np.clip(samples, -1.0, 1.0) * 32768.0
    if samples.ndim == 2:
        samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if samples.dtype.kind == "f":
        samples = np.clip(np.rint(samples), -32768, 32767)
    return bytes(samples.astype("<i2").tobytes())


def _too_long(name: str, what: str) -> AudioFormatError:
    return AudioFormatError(
        f"{name} audio {what}, more than the limit of {MAX_DECODED_BYTES} bytes of decoded 16-bit PCM "
        f"({MAX_DECODED_BYTES // 2 // 16000} s at 16 kHz): split it, or decode it in pieces"
    )


def _read_pcm16(source: Any, name: str) -> bytes:
    """Every frame of an open SoundFile as 16-bit mono, converted block by block: memory stays within the decoded
    size, and that within :data:`MAX_DECODED_BYTES`, whatever the header claims and however well the file packs."""
    if not 1 <= source.channels <= MAX_CHANNELS:
        raise AudioFormatError(f"{name} audio has {source.channels} channels (accepted: 1 to {MAX_CHANNELS})")
    dtype = "int16" if source.subtype in _INT16_SUBTYPES else "float32"
    block_frames = max(1, _READ_BLOCK_SAMPLES // source.channels)
    pcm = bytearray()
    while len(block := source.read(block_frames, dtype=dtype, always_2d=True)):
        pcm += _to_pcm16(block)
        if len(pcm) > MAX_DECODED_BYTES:
            raise _too_long(name, "decodes to more samples than it may")
    return bytes(pcm)


def _decode_container(data: bytes, fmt: AudioFormat) -> PCMAudio:
    sniffed = sniff(data)
    name = CONTAINER_NAMES[(sniffed or fmt).encoding]
    if sniffed and sniffed.encoding == "wav":
        check_wav(data)
    elif sniffed and sniffed.encoding == "ogg_opus":
        check_ogg(data)
    sf = soundfile()
    try:
        with sf.SoundFile(io.BytesIO(data)) as source:
            if source.frames >= _UNKNOWN_LENGTH:
                raise AudioFormatError(
                    f"{name} audio does not say how many samples it holds (a streamed {name} file); "
                    f"accepted: complete files ({ACCEPTED_AUDIO})"
                )
            rate, claimed = source.samplerate, source.frames
            if 2 * claimed > MAX_DECODED_BYTES:
                raise _too_long(name, f"says it holds {claimed} samples")
            pcm = _read_pcm16(source, name)
    except (RuntimeError, TypeError, ValueError, sf.SoundFileError) as exc:
        raise AudioFormatError(
            f"cannot decode {name} audio, it is truncated, corrupt or not audio ({_libsndfile_message(exc)}); "
            f"accepted: {ACCEPTED_AUDIO}"
        ) from None
    decoded = len(pcm) // 2
    if decoded == 0:
        raise AudioFormatError(f"{name} audio holds no samples")
    slack = MP3_SLACK if name == "MP3" else 0
    if decoded + slack < claimed:
        raise AudioFormatError(f"{name} audio is truncated: it says {claimed} samples but holds {decoded}")
    if name == "MP3" and decoded + slack < (present := mp3_samples(data)):
        raise AudioFormatError(
            f"MP3 audio holds {present} samples but only {decoded} can be decoded: it is variable-bitrate "
            "without a Xing/Info header or it is corrupt (accepted: MP3 with a Xing/Info header, or constant bitrate)"
        )
    try:
        return PCMAudio(pcm, rate)
    except AudioFormatError as error:
        raise AudioFormatError(f"{name} audio: {error.message}") from None


def decode_raw(data: bytes, fmt: AudioFormat) -> PCMAudio:
    assert fmt.sample_rate is not None
    if len(data) % fmt.frame_width:
        raise AudioFormatError(
            f"{fmt} audio is truncated: {len(data)} bytes is not a whole number of {fmt.frame_width}-byte sample frames"
        )
    if fmt.encoding == "pcm_s16le" and fmt.channels == 1:
        return PCMAudio(bytes(data), fmt.sample_rate)
    np = numpy()
    if fmt.encoding == "mulaw":
        data = ulaw_decode(data)
    elif fmt.encoding == "alaw":
        data = alaw_decode(data)
    samples = np.frombuffer(data, dtype="<f4" if fmt.encoding == "pcm_f32le" else "<i2")
    return PCMAudio(_to_pcm16(samples.reshape(-1, fmt.channels)), fmt.sample_rate)


def identify(data: bytes, format: AudioFormat | str | None = None) -> AudioFormat:
    """The format of non-empty audio ``data``: ``format`` when given, else the container its first bytes show."""
    if not data:
        raise AudioFormatError(f"audio is empty (accepted: {ACCEPTED_AUDIO})")
    fmt = AudioFormat.parse(format) if format is not None else sniff(data)
    if fmt is None:
        raise AudioFormatError(
            "unrecognised audio: not WAV, FLAC, Ogg or MP3; for raw audio give its format "
            f"(accepted: {ACCEPTED_SPELLINGS})"
        )
    return fmt


def decode(data: bytes, format: AudioFormat | str | None = None) -> PCMAudio:
    """Decode audio bytes to :class:`PCMAudio`; containers are recognised when ``format`` is None."""
    fmt = identify(data, format)
    return decode_raw(data, fmt) if fmt.is_raw else _decode_container(data, fmt)


def read_file(path: str | os.PathLike[str], format: AudioFormat | str | None = None) -> PCMAudio:
    """Read and decode an audio file; raw files (``.pcm``, ``.raw``, ``.ulaw``) need ``format``."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise AudioFormatError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from None
    try:
        return decode(data, format)
    except AudioFormatError as exc:
        raise AudioFormatError(f"{os.fspath(path)}: {exc.message}") from None


def wav_header(sample_rate: int, data_bytes: int | None = None, *, sample_width: int = 2, channels: int = 1) -> bytes:
    """A 44-byte PCM WAV header; without ``data_bytes`` the sizes say "unknown length" as streaming servers do."""
    check_sample_rate(sample_rate)
    if sample_width not in (1, 2, 3, 4) or not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(
            f"a PCM WAV header takes 1 to 4 bytes a sample and 1 to {MAX_CHANNELS} channels, "
            f"not {sample_width} and {channels}"
        )
    if data_bytes is not None and not 0 <= data_bytes <= 0xFFFFFFFF - 36:
        raise AudioFormatError(f"a WAV data chunk holds 0 to {0xFFFFFFFF - 36} bytes, not {data_bytes}")
    size = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    byte_rate = sample_rate * sample_width * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, channels, sample_rate, byte_rate,
        sample_width * channels, sample_width * 8, b"data", size,
    )  # fmt: skip


def encode_raw(pcm16: bytes, encoding: str) -> bytes:
    if encoding == "pcm_s16le":
        return pcm16
    if encoding == "mulaw":
        return ulaw_encode(pcm16)
    if encoding == "alaw":
        return alaw_encode(pcm16)
    np = numpy()
    return bytes((np.frombuffer(pcm16, dtype="<i2").astype("<f4") / 32768.0).tobytes())


def _container_rate(fmt: AudioFormat, rate: int) -> int:
    """The rate to encode ``fmt`` at: the one asked for, else the nearest the codec takes at or above ``rate``."""
    accepted = _CONTAINER_RATES.get(fmt.encoding)
    if accepted is None or rate in accepted:
        return rate
    if fmt.sample_rate is not None:
        raise AudioFormatError(
            f"{CONTAINER_NAMES[fmt.encoding]} cannot run at {rate} Hz (accepted: {', '.join(map(str, accepted))})"
        )
    return min((candidate for candidate in accepted if candidate >= rate), default=accepted[-1])


def encode(audio: PCMAudio, format: AudioFormat | str) -> bytes:
    """Encode ``audio`` as ``format``, resampling to the format's rate when it names one."""
    fmt = AudioFormat.parse(format)
    if fmt.channels != 1:
        raise AudioFormatError(f"cannot encode {fmt}: speechbridge produces mono audio (accepted: 1 channel)")
    rate = _container_rate(fmt, fmt.sample_rate or audio.sample_rate)
    audio = resample(audio, rate)
    if fmt.is_raw:
        return encode_raw(audio.data, fmt.encoding)
    if fmt.encoding == "wav":
        return wav_header(rate, len(audio.data)) + audio.data
    np, sf = numpy(), soundfile()
    container, subtype = _SOUNDFILE_CONTAINER[fmt.encoding]
    buffer = io.BytesIO()
    try:
        sf.write(buffer, np.frombuffer(audio.data, dtype="<i2"), rate, format=container, subtype=subtype)
    except (RuntimeError, TypeError, ValueError, sf.SoundFileError) as exc:
        raise AudioFormatError(f"cannot encode {fmt}: {_libsndfile_message(exc)}") from None
    return buffer.getvalue()
