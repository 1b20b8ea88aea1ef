"""Per-run measures: normalized word error rate, where speech ends in a recording, and cost.

The default normalizer lower-cases, spells out numbers ("42" -> "forty two", "3.5" -> "three point five",
"1,000" -> "one thousand", "%" -> "percent"), turns hyphens and slashes into spaces, drops every other punctuation
mark except apostrophes inside words, and collapses whitespace. ``"whisper"`` uses whisper_normalizer's
``EnglishTextNormalizer`` (when installed); ``"none"`` only splits on whitespace.
"""

from __future__ import annotations

import array
import importlib
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

import attrs

from ..audio import PCMAudio, resample
from ..config import Config
from ..errors import ConfigError, MissingDependency

__all__ = [
    "NORMALIZERS",
    "Normalizer",
    "Pricing",
    "WordErrors",
    "check_reference",
    "default_normalizer",
    "get_normalizer",
    "load_jiwer",
    "speech_end_s",
    "word_errors",
]

Normalizer: TypeAlias = Callable[[str], str]

_ONES: Final = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS: Final = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES: Final = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_NUMBER_RE: Final = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
VAD_FRAME_S: Final = 0.03
VAD_RATES: Final = (8000, 16000, 32000, 48000)
MIN_SPEECH_FRAMES: Final = 3
ENERGY_FLOOR_DBFS: Final = -50.0
ENERGY_BELOW_PEAK_DB: Final = 30.0


def _integer_words(number: int) -> str:
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    for scale, name in _SCALES:
        if number >= scale:
            count, rest = divmod(number, scale)
            return f"{_integer_words(count)} {name}" + (f" {_integer_words(rest)}" if rest else "")
    raise AssertionError(number)


def _number_words(match: re.Match[str]) -> str:
    whole, _, fraction = match.group().replace(",", "").partition(".")
    words = _integer_words(int(whole)) if int(whole) < 10**15 else " ".join(_ONES[int(d)] for d in whole)
    if fraction:
        words += " point " + " ".join(_ONES[int(digit)] for digit in fraction)
    return f" {words} "


def default_normalizer(text: str) -> str:
    """Lower case, numbers spelled out, no punctuation but in-word apostrophes, single spaces."""
    text = text.lower().replace("%", " percent ").replace("&", " and ")
    text = _NUMBER_RE.sub(_number_words, text)
    text = re.sub(r"[-/_]", " ", text)
    text = re.sub(r"(?<![a-z0-9])'|'(?![a-z0-9])", " ", text.replace("\u2019", "'"))
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(text.split())


def _whisper_normalizer() -> Normalizer:
    try:
        english = importlib.import_module("whisper_normalizer.english")
    except ImportError:
        raise MissingDependency("whisper_normalizer", "compare") from None
    normalizer: Normalizer = english.EnglishTextNormalizer()
    return normalizer


NORMALIZERS: Final[Mapping[str, Callable[[], Normalizer]]] = {
    "default": lambda: default_normalizer,
    "whisper": _whisper_normalizer,
    "none": lambda: lambda text: " ".join(text.split()),
}


def get_normalizer(normalizer: str | Normalizer) -> Normalizer:
    """A normalizer by name (see :data:`NORMALIZERS`), or the callable given."""
    if callable(normalizer):
        return normalizer
    if normalizer not in NORMALIZERS:
        raise ConfigError(f"unknown normalizer {normalizer!r}", allowed=NORMALIZERS)
    return NORMALIZERS[normalizer]()


@attrs.frozen
class WordErrors:
    """Word-level alignment counts of a hypothesis against a reference (after normalization)."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def reference_words(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        return self.errors / self.reference_words


def load_jiwer() -> Any:
    """The jiwer module, which aligns words; a clear error names the extra that installs it."""
    try:
        return importlib.import_module("jiwer")
    except ImportError:
        raise MissingDependency("jiwer", "compare") from None


def check_reference(reference: str, normalizer: str | Normalizer = "default") -> None:
    """Fail with :class:`ConfigError` unless ``reference`` keeps words after normalization."""
    if not get_normalizer(normalizer)(reference):
        raise ConfigError(f"reference {reference!r} has no words left after normalization")


def word_errors(reference: str, hypothesis: str, normalizer: str | Normalizer = "default") -> WordErrors:
    """Align ``hypothesis`` with ``reference`` by jiwer; an empty hypothesis deletes every word."""
    check_reference(reference, normalizer)
    normalize = get_normalizer(normalizer)
    reference_text, hypothesis_text = normalize(reference), normalize(hypothesis)
    if not hypothesis_text:
        return WordErrors(0, len(reference_text.split()), 0, 0)
    output = load_jiwer().process_words(reference_text, hypothesis_text)
    return WordErrors(output.substitutions, output.deletions, output.insertions, output.hits)


def speech_end_s(audio: PCMAudio, *, vad: str = "auto") -> float | None:
    """Where the last speech in ``audio`` ends, in seconds, or None when there is none.

    ``vad`` is ``"webrtc"`` (webrtcvad, aggressiveness 2), ``"energy"`` (30 ms frames louder than
    max(-50 dBFS, peak - 30 dB)) or ``"auto"``: webrtcvad when installed, else energy. Speech is a run of at least
    three voiced 30 ms frames, so clicks are not speech.
    """
    if vad not in ("auto", "webrtc", "energy"):
        raise ConfigError(f"unknown VAD {vad!r}", allowed=("auto", "webrtc", "energy"))
    webrtcvad = None
    if vad != "energy":
        try:
            webrtcvad = importlib.import_module("webrtcvad")
        except ImportError:
            if vad == "webrtc":
                raise MissingDependency("webrtcvad", "local") from None
    if webrtcvad is not None:
        if audio.sample_rate not in VAD_RATES:
            audio = resample(audio, 16000)
        detector = webrtcvad.Vad(2)
        voiced = [detector.is_speech(frame, audio.sample_rate) for frame in _frames(audio)]
    else:
        levels = [_level_dbfs(frame) for frame in _frames(audio)]
        threshold = max(ENERGY_FLOOR_DBFS, max(levels, default=-120.0) - ENERGY_BELOW_PEAK_DB)
        voiced = [level >= threshold for level in levels]
    return _last_speech_end(voiced)


def _frames(audio: PCMAudio) -> list[bytes]:
    size = 2 * round(VAD_FRAME_S * audio.sample_rate)
    return [audio.data[start : start + size] for start in range(0, len(audio.data) - size + 1, size)]


def _level_dbfs(frame: bytes) -> float:
    samples = array.array("h", frame)
    if sys.byteorder == "big":
        samples.byteswap()
    mean_square = sum(sample * sample for sample in samples) / len(samples)
    return 10 * math.log10(mean_square / 32768**2) if mean_square else -120.0


def _last_speech_end(voiced: list[bool]) -> float | None:
    run = 0
    end: int | None = None
    for index, is_voiced in enumerate(voiced):
        run = run + 1 if is_voiced else 0
        if run >= MIN_SPEECH_FRAMES:
            end = index + 1
    return None if end is None else round(end * VAD_FRAME_S, 3)


@attrs.frozen
class Pricing:
    """Prices per provider from ``[pricing.<provider>]``: ``stt_per_minute`` of audio, ``tts_per_1k_chars``."""

    table: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Pricing:
        return cls(config.pricing)

    def stt_cost(self, provider: str, audio_s: float) -> float | None:
        price = self.table.get(provider, {}).get("stt_per_minute")
        return None if price is None else round(price * audio_s / 60, 8)

    def tts_cost(self, provider: str, characters: int) -> float | None:
        price = self.table.get(provider, {}).get("tts_per_1k_chars")
        return None if price is None else round(price * characters / 1000, 8)
