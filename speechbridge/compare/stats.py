"""Honest numbers: medians, 95th percentiles, and paired bootstrap confidence intervals of differences.

A difference between two profiles is computed over the items both ran successfully (paired by item), and its
interval is the percentile interval of the same statistic over ``resamples`` resamplings of those items with
replacement, from a seeded generator (the same inputs always give the same interval).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal

from ..errors import ConfigError
from .records import Difference, MetricSummary, Mode, ProfileSummary, STTRun, TTSRun

__all__ = [
    "STT_METRICS",
    "TTS_METRICS",
    "differences",
    "paired_difference",
    "percentile",
    "summarize",
    "summarize_metric",
]

STT_METRICS: Final = ("wer", "first_transcript_s", "ttfs_s", "processing_s", "rtf", "cost_usd")
TTS_METRICS: Final = ("wer", "first_audio_s", "processing_s", "rtf", "audio_s", "cost_usd")
COMPARED_METRICS: Final = ("wer", "ttfs_s", "first_transcript_s", "first_audio_s", "rtf")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ConfigError("a percentile of no values is undefined")
    if not 0 <= q <= 100:
        raise ConfigError(f"percentile {q!r} is not between 0 and 100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize_metric(values: Iterable[float | None]) -> MetricSummary:
    present = [value for value in values if value is not None]
    if not present:
        return MetricSummary(count=0)
    return MetricSummary(
        count=len(present),
        mean=sum(present) / len(present),
        median=percentile(present, 50),
        p95=percentile(present, 95),
        minimum=min(present),
        maximum=max(present),
    )


def summarize(runs: Sequence[STTRun] | Sequence[TTSRun]) -> tuple[ProfileSummary, ...]:
    """One summary per profile and mode, in the order they first appear in ``runs``."""
    groups: dict[tuple[str, Mode], list[STTRun | TTSRun]] = {}
    for run in runs:
        groups.setdefault((run.profile, run.mode), []).append(run)
    return tuple(_summary(group) for group in groups.values())


def _summary(runs: Sequence[STTRun | TTSRun]) -> ProfileSummary:
    first = runs[0]
    kind: Literal["stt", "tts"] = "stt" if isinstance(first, STTRun) else "tts"
    names = STT_METRICS if kind == "stt" else TTS_METRICS
    done = [run for run in runs if run.ok]
    scored = [run for run in done if run.reference_words]
    substitutions = sum(run.substitutions or 0 for run in scored)
    deletions = sum(run.deletions or 0 for run in scored)
    insertions = sum(run.insertions or 0 for run in scored)
    reference_words = sum(run.reference_words or 0 for run in scored)
    costs = [run.cost_usd for run in done if run.cost_usd is not None]
    return ProfileSummary(
        kind=kind,
        profile=first.profile,
        provider=first.provider,
        mode=first.mode,
        runs=len(runs),
        failures=len(runs) - len(done),
        attempts=sum(run.attempts for run in runs),
        audio_s=sum(run.audio_s or 0.0 for run in done),
        characters=sum(run.characters for run in done if isinstance(run, TTSRun)),
        cost_usd=sum(costs) if costs else None,
        wer=(substitutions + deletions + insertions) / reference_words if reference_words else None,
        substitutions=substitutions,
        deletions=deletions,
        insertions=insertions,
        reference_words=reference_words,
        metrics={name: summarize_metric(getattr(run, name) for run in done) for name in names},
    )


def _pooled_wer(runs: Sequence[STTRun | TTSRun]) -> float:
    errors = sum((run.substitutions or 0) + (run.deletions or 0) + (run.insertions or 0) for run in runs)
    return errors / sum(run.reference_words or 0 for run in runs)


def paired_difference(
    runs_a: Sequence[STTRun | TTSRun],
    runs_b: Sequence[STTRun | TTSRun],
    metric: str,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Difference:
    """``b - a`` on ``metric`` over the items both profiles ran successfully, with a bootstrap interval.

    For ``"wer"`` the statistic is the pooled WER (all errors over all reference words) of each side; for other
    metrics it is the mean of the per-item differences. Each side holds the runs of one profile in one mode.
    """
    if resamples < 1:
        raise ConfigError(f"resamples must be at least 1, not {resamples}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1 (e.g. 0.95), not {confidence}")
    if not runs_a or not runs_b:
        raise ConfigError("a difference needs runs on both sides")
    a_by_item = {run.item: run for run in runs_a if _measured(run, metric)}
    b_by_item = {run.item: run for run in runs_b if _measured(run, metric)}
    items = [item for item in a_by_item if item in b_by_item]
    pairs = [(a_by_item[item], b_by_item[item]) for item in items]
    base = Difference(
        metric=metric,
        mode=runs_a[0].mode,
        profile_a=runs_a[0].profile,
        profile_b=runs_b[0].profile,
        pairs=len(pairs),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )
    if not pairs:
        return base
    statistic = _wer_statistic if metric == "wer" else _mean_statistic(metric)
    mean_a, mean_b = statistic(pairs)
    generator = random.Random(seed)
    boot = sorted(_delta(statistic(generator.choices(pairs, k=len(pairs)))) for _ in range(resamples))
    tail = (1 - confidence) / 2 * 100
    return Difference(
        metric=metric,
        mode=base.mode,
        profile_a=base.profile_a,
        profile_b=base.profile_b,
        pairs=len(pairs),
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_b - mean_a,
        ci_low=percentile(boot, tail),
        ci_high=percentile(boot, 100 - tail),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def _measured(run: STTRun | TTSRun, metric: str) -> bool:
    if not run.ok:
        return False
    if metric == "wer":
        return bool(run.reference_words) and run.substitutions is not None
    return getattr(run, metric) is not None


Pairs = Sequence[tuple[STTRun | TTSRun, STTRun | TTSRun]]


def _delta(sides: tuple[float, float]) -> float:
    return sides[1] - sides[0]


def _wer_statistic(pairs: Pairs) -> tuple[float, float]:
    return _pooled_wer([a for a, _ in pairs]), _pooled_wer([b for _, b in pairs])


def _mean_statistic(metric: str) -> Callable[[Pairs], tuple[float, float]]:
    def statistic(pairs: Pairs) -> tuple[float, float]:
        return (
            sum(getattr(a, metric) for a, _ in pairs) / len(pairs),
            sum(getattr(b, metric) for _, b in pairs) / len(pairs),
        )

    return statistic


def differences(
    runs: Sequence[STTRun] | Sequence[TTSRun],
    *,
    baseline: str | None = None,
    metrics: Sequence[str] = COMPARED_METRICS,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[Difference, ...]:
    """Every other profile against ``baseline`` (default: the first profile in ``runs``), per mode and metric.

    Metrics no run of that kind has (such as ``ttfs_s`` for TTS) or no pair has a value for are left out.
    """
    groups: dict[tuple[str, Mode], list[STTRun | TTSRun]] = {}
    for run in runs:
        groups.setdefault((run.profile, run.mode), []).append(run)
    profiles = list(dict.fromkeys(profile for profile, _ in groups))
    if not profiles:
        return ()
    baseline = profiles[0] if baseline is None else baseline
    if baseline not in profiles:
        raise ConfigError(f"baseline profile {baseline!r} has no runs", allowed=profiles)
    found: list[Difference] = []
    for (profile, mode), group in groups.items():
        reference = groups.get((baseline, mode))
        if profile == baseline or reference is None:
            continue
        for metric in metrics:
            if not hasattr(group[0], metric):
                continue
            difference = paired_difference(
                reference, group, metric, resamples=resamples, confidence=confidence, seed=seed
            )
            if difference.pairs:
                found.append(difference)
    return tuple(found)
