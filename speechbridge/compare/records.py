"""What a comparison records: one :class:`STTRun` or :class:`TTSRun` per item x profile x mode, and the summaries.

Runs are written one JSON object a line (``to_dict``) and read back for resuming and reports (``from_dict``).
Times are seconds; ``*_s`` fields measured on the wall clock are None when the run failed before reaching them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

import attrs

from ..errors import ConfigError

__all__ = ["Comparison", "Difference", "MetricSummary", "Mode", "ProfileSummary", "RunKey", "STTRun", "TTSRun"]

Mode: TypeAlias = Literal["stream", "batch"]
RunKey: TypeAlias = tuple[str, str, str]
MODES: tuple[Mode, ...] = ("stream", "batch")

R = TypeVar("R", bound="_Record")


class _Record:
    """JSON round trip shared by every record; unknown or missing keys are a :class:`ConfigError`."""

    record_name: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=True)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        if not isinstance(data, Mapping):
            raise ConfigError(f"a {cls.record_name} is a JSON object, not {type(data).__name__}")
        fields = attrs.fields(cls)  # type: ignore[arg-type]
        names = [field.name for field in fields]
        unknown = [key for key in data if key not in names]
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in a {cls.record_name}", allowed=names)
        missing = [field.name for field in fields if field.default is attrs.NOTHING and field.name not in data]
        if missing:
            raise ConfigError(f"a {cls.record_name} needs {', '.join(map(repr, missing))}", allowed=names)
        return cls(**cls._decode(dict(data)))

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data


class _Run(_Record):
    """What STT and TTS runs share: a key in the runs file, and success."""

    item: str
    profile: str
    mode: Mode
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key(self) -> RunKey:
        return (self.item, self.profile, self.mode)


def _mode(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if value not in MODES:
        raise ConfigError(f"unknown mode {value!r}", allowed=MODES)


@attrs.frozen(kw_only=True)
class STTRun(_Run):
    """One recording through one STT profile in one mode.

    ``first_transcript_s``: wall time from the start of sending (stream) or the request (batch) to the first text.
    ``ttfs_s`` (streams only): time to final segment, as pipecat's stt-benchmark defines it: from sending the audio
    where speech ends (``speech_end_s`` into the recording, found by a local VAD) to the first final transcript
    reaching that far, within 0.3 s (else the last final). In a real-time paced stream (``paced``) it is the wait
    a live caller has; a provider that finalises only when the stream ends is charged the trailing silence.
    ``processing_s``: wall time of the whole run; ``rtf`` is ``processing_s / audio_s`` (batch and fast streams).
    WER counts come from comparing the normalized ``reference`` and ``hypothesis`` (the final transcripts joined).
    """

    record_name: ClassVar[str] = "STT run"

    item: str
    profile: str
    provider: str
    mode: Mode = attrs.field(validator=_mode)
    reference: str
    hypothesis: str = ""
    audio_s: float = 0.0
    paced: bool = False
    attempts: int = 1
    error: str | None = None
    error_type: str | None = None
    wer: float | None = None
    substitutions: int | None = None
    deletions: int | None = None
    insertions: int | None = None
    hits: int | None = None
    reference_words: int | None = None
    first_transcript_s: float | None = None
    speech_end_s: float | None = None
    ttfs_s: float | None = None
    processing_s: float | None = None
    rtf: float | None = None
    cost_usd: float | None = None
    started_at: str | None = None


@attrs.frozen(kw_only=True)
class TTSRun(_Run):
    """One text through one TTS profile in one mode, judged by a round trip through an STT (``judge``).

    ``first_audio_s``: wall time from sending the text to the first audio; ``processing_s``: to the last audio;
    ``rtf`` is ``processing_s / audio_s``. ``hypothesis`` is the judge's transcript of the audio and the WER
    fields compare it with ``reference`` (the text spoken).
    """

    record_name: ClassVar[str] = "TTS run"

    item: str
    profile: str
    provider: str
    mode: Mode = attrs.field(validator=_mode)
    reference: str
    characters: int = 0
    judge: str | None = None
    hypothesis: str | None = None
    attempts: int = 1
    error: str | None = None
    error_type: str | None = None
    audio_s: float | None = None
    first_audio_s: float | None = None
    processing_s: float | None = None
    rtf: float | None = None
    wer: float | None = None
    substitutions: int | None = None
    deletions: int | None = None
    insertions: int | None = None
    hits: int | None = None
    reference_words: int | None = None
    cost_usd: float | None = None
    started_at: str | None = None


@attrs.frozen(kw_only=True)
class MetricSummary(_Record):
    """The spread of one metric over a profile's successful runs (``count`` of them had a value)."""

    record_name: ClassVar[str] = "metric summary"

    count: int
    mean: float | None = None
    median: float | None = None
    p95: float | None = None
    minimum: float | None = None
    maximum: float | None = None


@attrs.frozen(kw_only=True)
class ProfileSummary(_Record):
    """One profile in one mode, over all its runs.

    ``wer`` is pooled: all errors over all reference words of the successful runs (the per-file spread is in
    ``metrics["wer"]``). ``metrics`` maps a run's metric field name (``"ttfs_s"``, ``"rtf"``...) to its spread.
    """

    record_name: ClassVar[str] = "profile summary"

    kind: Literal["stt", "tts"]
    profile: str
    provider: str
    mode: Mode = attrs.field(validator=_mode)
    runs: int
    failures: int
    attempts: int
    audio_s: float = 0.0
    characters: int = 0
    cost_usd: float | None = None
    wer: float | None = None
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_words: int = 0
    metrics: dict[str, MetricSummary] = attrs.field(factory=dict)

    @property
    def successes(self) -> int:
        return self.runs - self.failures

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        metrics = data.get("metrics", {})
        if not isinstance(metrics, Mapping):
            raise ConfigError(f"metrics of a profile summary is a JSON object, not {type(metrics).__name__}")
        return {**data, "metrics": {name: MetricSummary.from_dict(value) for name, value in metrics.items()}}


@attrs.frozen(kw_only=True)
class Difference(_Record):
    """``profile_b`` minus ``profile_a`` on one metric, paired by item, with a bootstrap confidence interval.

    ``difference`` is the mean of the paired differences over ``pairs`` items; the interval is the
    percentile interval of ``resamples`` resampled means (seeded). ``significant`` is False when it includes 0.
    """

    record_name: ClassVar[str] = "difference"

    metric: str
    mode: Mode = attrs.field(validator=_mode)
    profile_a: str
    profile_b: str
    pairs: int
    mean_a: float | None = None
    mean_b: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0

    @property
    def significant(self) -> bool:
        if self.ci_low is None or self.ci_high is None:
            return False
        return not (self.ci_low <= 0.0 <= self.ci_high)


@attrs.frozen(kw_only=True)
class Comparison:
    """The outcome of :func:`~speechbridge.compare.compare_stt` or :func:`~speechbridge.compare.compare_tts`.

    ``runs`` holds the latest run of every item x profile x mode (resumed ones included), ``summaries`` one per
    profile and mode, ``differences`` each profile against the first (the baseline) per metric, and ``runs_file``
    the JSONL file the runs were appended to (None when no output directory was given).
    """

    kind: Literal["stt", "tts"]
    profiles: tuple[str, ...]
    runs: Sequence[STTRun] | Sequence[TTSRun]
    summaries: tuple[ProfileSummary, ...]
    differences: tuple[Difference, ...]
    runs_file: Path | None = None
    resumed: int = 0
