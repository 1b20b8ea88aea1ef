"""G.711 mu-law and A-law with numpy lookup tables, bit-exact with the reference codec that ``audioop`` used."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from ..errors import AudioFormatError
from ._extras import numpy

if TYPE_CHECKING:
    import numpy as np

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]


@cache
def _ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    np = numpy()
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit magnitude domain
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + (0x84 >> 2)
    seg_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(seg_end, mag, side="left")
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0xF))
    encode_table = ((code ^ mask) & 0xFF).astype(np.uint8)
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0xF) << 3) + 0x84) << ((u & 0x70) >> 4)
    decode_table = np.where(u & 0x80, 0x84 - t, t - 0x84).astype("<i2")
    return encode_table, decode_table


@cache
def _alaw_tables() -> tuple[np.ndarray, np.ndarray]:
    np = numpy()
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit domain
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg_end = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(seg_end, mag, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0xF))
    encode_table = ((code ^ mask) & 0xFF).astype(np.uint8)
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0xF) << 4
    seg_d = (a & 0x70) >> 4
    t = np.where(seg_d == 0, t + 8, t + 0x108)
    t = np.where(seg_d > 1, t << np.maximum(seg_d - 1, 0), t)
    decode_table = np.where(a & 0x80, t, -t).astype("<i2")
    return encode_table, decode_table


def _g711_encode(pcm16: bytes, table: np.ndarray) -> bytes:
    if len(pcm16) % 2:
        raise AudioFormatError(f"16-bit PCM must have an even number of bytes, not {len(pcm16)}")
    np = numpy()
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.int32) + 32768
    return bytes(table[samples].tobytes())


def _g711_decode(codes: bytes, table: np.ndarray) -> bytes:
    np = numpy()
    return bytes(table[np.frombuffer(codes, dtype=np.uint8)].tobytes())


def ulaw_encode(pcm16: bytes) -> bytes:
    """16-bit PCM to G.711 mu-law, one byte per sample."""
    return _g711_encode(pcm16, _ulaw_tables()[0])


def ulaw_decode(codes: bytes) -> bytes:
    """G.711 mu-law to 16-bit PCM."""
    return _g711_decode(codes, _ulaw_tables()[1])


def alaw_encode(pcm16: bytes) -> bytes:
    """16-bit PCM to G.711 A-law, one byte per sample."""
    return _g711_encode(pcm16, _alaw_tables()[0])


def alaw_decode(codes: bytes) -> bytes:
    """G.711 A-law to 16-bit PCM."""
    return _g711_decode(codes, _alaw_tables()[1])
