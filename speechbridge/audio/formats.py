"""Audio formats: what a byte stream holds, and 16-bit mono PCM, the form audio takes inside speechbridge."""

from __future__ import annotations

import re
from typing import Final, Literal, TypeAlias

import attrs

from ..errors import AudioFormatError

__all__ = [
    "ACCEPTED_AUDIO",
    "RAW_ENCODINGS",
    "AudioFormat",
    "Encoding",
    "PCMAudio",
    "check_sample_rate",
    "duration_of",
    "shown",
]

Encoding: TypeAlias = Literal["pcm_s16le", "pcm_f32le", "mulaw", "alaw", "wav", "flac", "ogg_opus", "mp3"]

RAW_ENCODINGS: Final = ("pcm_s16le", "pcm_f32le", "mulaw", "alaw")
CONTAINER_ENCODINGS: Final = ("wav", "flac", "ogg_opus", "mp3")
_SAMPLE_WIDTH: Final = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}
_SPELLINGS: Final = {
    "pcm": "pcm_s16le",
    "pcm16": "pcm_s16le",
    "pcm_s16le": "pcm_s16le",
    "s16le": "pcm_s16le",
    "linear16": "pcm_s16le",
    "f32": "pcm_f32le",
    "pcm_f32le": "pcm_f32le",
    "f32le": "pcm_f32le",
    "float32": "pcm_f32le",
    "mulaw": "mulaw",
    "ulaw": "mulaw",
    "pcm_mulaw": "mulaw",
    "alaw": "alaw",
    "pcm_alaw": "alaw",
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg_opus",
    "opus": "ogg_opus",
    "ogg_opus": "ogg_opus",
    "mp3": "mp3",
}
ACCEPTED_SPELLINGS: Final = (
    "pcm_<rate>, f32_<rate>, mulaw_<rate>, alaw_<rate> (add x<channels> for interleaved channels, e.g. pcm_16000x2), "
    "wav, flac, opus, mp3 (containers may add _<rate>)"
)
ACCEPTED_AUDIO: Final = (
    "WAV (8/16/24/32-bit PCM, float, mu-law, A-law), FLAC, Ogg/Opus, MP3, "
    "or raw pcm_s16le/pcm_f32le/mulaw/alaw with its format given"
)
_FORMAT_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*?)(?:_(?P<rate>\d{1,9}))?(?:x(?P<channels>\d{1,9}))?$")
CONTAINER_NAMES: Final = {"wav": "WAV", "flac": "FLAC", "ogg_opus": "Ogg", "mp3": "MP3"}
MAX_SAMPLE_RATE: Final = 384_000
MAX_CHANNELS: Final = 32


def shown(value: object) -> str:
    """``repr(value)`` cut to a readable length, for an error message about a value that came from outside."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= 80 else text[:80] + "…"


def check_sample_rate(value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1000 <= value <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            f"sample rate {shown(value)} is not accepted (accepted: whole Hz, 1000 to {MAX_SAMPLE_RATE})"
        )


def _check_optional_rate(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None:
        check_sample_rate(value)


def _check_channels(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CHANNELS:
        raise AudioFormatError(f"channel count {shown(value)} is not accepted (accepted: 1 to {MAX_CHANNELS})")


@attrs.frozen
class AudioFormat:
    """What a byte stream holds: an encoding, its sample rate and channel count.

    Raw encodings (``pcm_s16le``, ``pcm_f32le``, ``mulaw``, ``alaw``) need a sample rate and interleave their
    channels; containers (``wav``, ``flac``, ``ogg_opus``, ``mp3``) carry their own, and a rate given with one is
    the rate to encode at.
    """

    encoding: Encoding = attrs.field()
    sample_rate: int | None = attrs.field(default=None, validator=_check_optional_rate)
    channels: int = attrs.field(default=1, validator=_check_channels)

    @encoding.validator
    def _check_encoding(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in RAW_ENCODINGS + CONTAINER_ENCODINGS:
            raise AudioFormatError(
                f"unknown encoding {shown(value)} (accepted: {', '.join(RAW_ENCODINGS + CONTAINER_ENCODINGS)})"
            )
        if value in RAW_ENCODINGS and self.sample_rate is None:
            raise AudioFormatError(f"raw {value} audio needs a sample rate, e.g. {value}_16000")

    @classmethod
    def pcm16(cls, sample_rate: int) -> AudioFormat:
        """Raw 16-bit mono PCM at ``sample_rate``."""
        return cls("pcm_s16le", sample_rate)

    @classmethod
    def parse(cls, spec: str | AudioFormat) -> AudioFormat:
        """Read a short spelling such as ``pcm_16000``, ``mulaw_8000``, ``f32_24000x2``, ``wav`` or ``opus_48000``."""
        if isinstance(spec, AudioFormat):
            return spec
        if not isinstance(spec, str):
            raise AudioFormatError(f"an audio format is a string or AudioFormat, not {type(spec).__name__}")
        match = _FORMAT_RE.match(spec.strip().lower())
        name = match and _SPELLINGS.get(match["name"])
        if not match or not name:
            raise AudioFormatError(f"unknown audio format {shown(spec)} (accepted: {ACCEPTED_SPELLINGS})")
        rate = int(match["rate"]) if match["rate"] else None
        return cls(name, rate, int(match["channels"] or 1))  # type: ignore[arg-type]

    @property
    def is_raw(self) -> bool:
        return self.encoding in RAW_ENCODINGS

    @property
    def sample_width(self) -> int:
        """Bytes per sample of one channel (raw encodings only)."""
        if not self.is_raw:
            raise AudioFormatError(f"{self.encoding} is a container: its samples have no fixed width")
        return _SAMPLE_WIDTH[self.encoding]

    @property
    def frame_width(self) -> int:
        """Bytes per sample frame: one sample of every channel (raw encodings only)."""
        return self.sample_width * self.channels

    def bytes_for(self, seconds: float) -> int:
        """How many bytes of this raw format hold ``seconds`` of audio."""
        width = self.frame_width
        assert self.sample_rate is not None
        return round(seconds * self.sample_rate) * width

    def __str__(self) -> str:
        short = {"pcm_s16le": "pcm", "pcm_f32le": "f32"}.get(self.encoding, self.encoding)
        text = f"{short}_{self.sample_rate}" if self.sample_rate else short
        return text if self.channels == 1 else f"{text}x{self.channels}"


def _check_pcm16_data(instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if len(value) % 2:
        raise AudioFormatError(f"16-bit PCM must have an even number of bytes, not {len(value)}")


@attrs.frozen
class PCMAudio:
    """16-bit signed little-endian mono samples at ``sample_rate``."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>", validator=_check_pcm16_data)
    sample_rate: int = attrs.field(validator=lambda instance, attribute, value: check_sample_rate(value))

    @property
    def format(self) -> AudioFormat:
        return AudioFormat.pcm16(self.sample_rate)

    @property
    def duration_s(self) -> float:
        return len(self.data) / 2 / self.sample_rate


def duration_of(num_bytes: int, fmt: AudioFormat) -> float:
    """Seconds of audio in ``num_bytes`` of a raw format."""
    width = fmt.frame_width
    assert fmt.sample_rate
    return num_bytes / (width * fmt.sample_rate)
