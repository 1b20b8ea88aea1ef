"""Audio formats and conversion: decode, encode, resample, frame.

Inside speechbridge, audio travels as :class:`PCMAudio`: 16-bit signed little-endian mono at a known rate.
Converting needs the ``audio`` extra (numpy, soxr, soundfile); audio already in the wanted format passes through
without it.
"""

from .codec import decode, encode, identify, read_file, wav_header
from .containers import sniff
from .formats import RAW_ENCODINGS, AudioFormat, Encoding, PCMAudio, duration_of
from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .resampling import StreamResampler, resample
from .streaming import Framer, StreamConverter

__all__ = [
    "RAW_ENCODINGS",
    "AudioFormat",
    "Encoding",
    "Framer",
    "PCMAudio",
    "StreamConverter",
    "StreamResampler",
    "alaw_decode",
    "alaw_encode",
    "decode",
    "duration_of",
    "encode",
    "identify",
    "read_file",
    "resample",
    "sniff",
    "ulaw_decode",
    "ulaw_encode",
    "wav_header",
]
