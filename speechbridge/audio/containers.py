"""Recognising containers by their first bytes, and checking that they are whole before they are decoded."""

from __future__ import annotations

import struct
from typing import Final

from ..errors import AudioFormatError
from .formats import AudioFormat

__all__ = ["check_ogg", "check_wav", "mp3_samples", "sniff"]

MP3_SLACK: Final = 4 * 1152  # samples: the Xing/Info frame, encoder delay and padding
_MP3_BITRATES: Final = (
    (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
)  # kbit/s of Layer III by bitrate index, for MPEG-2/2.5 and MPEG-1
_MP3_SAMPLE_RATES: Final = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000), 3: (44100, 48000, 32000)}


def _is_mpeg_audio_frame(data: bytes) -> bool:
    """An MPEG audio frame header: sync bits, then no reserved version, layer, bitrate or sample rate."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version, layer = (data[1] >> 3) & 3, (data[1] >> 1) & 3
    bitrate, rate = data[2] >> 4, (data[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate != 0xF and rate != 3


def sniff(data: bytes) -> AudioFormat | None:
    """Recognise a container by its first bytes; None for raw or unknown audio."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return AudioFormat("wav")
    if data[:4] == b"fLaC":
        return AudioFormat("flac")
    if data[:4] == b"OggS":
        return AudioFormat("ogg_opus")
    if data[:3] == b"ID3" or _is_mpeg_audio_frame(data):
        return AudioFormat("mp3")
    return None


def check_wav(data: bytes) -> None:
    """Reject WAV data whose chunks are cut short (libsndfile would quietly read what is there)."""
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk_id == b"data":
            streaming = size in (0, 0xFFFFFFFF)
            if not streaming and offset + 8 + size > len(data):
                missing = offset + 8 + size - len(data)
                raise AudioFormatError(f"WAV audio is truncated: its data chunk is {missing} bytes short")
            return
        offset += 8 + size + (size & 1)
    raise AudioFormatError("WAV audio is truncated or corrupt: it has no data chunk")


def check_ogg(data: bytes) -> None:
    """Reject Ogg data cut inside a page or before its end-of-stream page (libsndfile would play what is there)."""
    offset = flags = 0
    while offset < len(data):
        if data[offset : offset + 4] != b"OggS" or offset + 27 > len(data):
            raise AudioFormatError(f"Ogg audio is truncated or corrupt: no whole page header at byte {offset}")
        flags, segments = data[offset + 5], data[offset + 26]
        body_start = offset + 27 + segments
        offset = body_start + sum(data[offset + 27 : body_start])
        if offset > len(data):
            raise AudioFormatError(f"Ogg audio is truncated: its last page is {offset - len(data)} bytes short")
    if not flags & 0x04:
        raise AudioFormatError("Ogg audio is truncated: it stops before the page that ends the stream")


def mp3_samples(data: bytes) -> int:
    """Samples per channel in the chain of MPEG Layer III frames at the start of ``data`` (0 if it is not one)."""
    offset = total = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # skip the ID3v2 tag; its size is stored 7 bits a byte
        offset = 10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9])
    while _is_mpeg_audio_frame(data[offset : offset + 4]) and (data[offset + 1] >> 1) & 3 == 1:
        mpeg1 = data[offset + 1] & 0x08
        bitrate = _MP3_BITRATES[bool(mpeg1)][data[offset + 2] >> 4] * 1000
        rate = _MP3_SAMPLE_RATES[(data[offset + 1] >> 3) & 3][(data[offset + 2] >> 2) & 3]
        if not bitrate:  # free format: frames cannot be measured
            return 0
        samples = 1152 if mpeg1 else 576
        offset += samples // 8 * bitrate // rate + ((data[offset + 2] >> 1) & 1)
        total += samples
    return total
