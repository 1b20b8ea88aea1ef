"""Comparison statistics: percentiles, per-profile summaries and paired bootstrap intervals of differences."""

from __future__ import annotations

import random

import pytest

from speechbridge.compare import STTRun, TTSRun, differences, paired_difference, percentile, summarize
from speechbridge.errors import ConfigError


def stt_run(item: str, profile: str, *, errors: int = 0, words: int = 10, ttfs: float | None = None, **extra) -> STTRun:
    return STTRun(
        item=item,
        profile=profile,
        provider=profile,
        mode=extra.pop("mode", "stream"),
        reference="x",
        substitutions=errors,
        deletions=0,
        insertions=0,
        hits=words - errors,
        reference_words=words,
        wer=errors / words,
        ttfs_s=ttfs,
        **extra,
    )


def test_percentile_interpolates_like_numpy():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([7], 95) == 7
    assert percentile(list(range(101)), 95) == 95
    with pytest.raises(ConfigError, match="no values"):
        percentile([], 50)
    with pytest.raises(ConfigError, match="not between 0 and 100"):
        percentile([1], 101)


def test_summary_pools_wer_and_counts_failures():
    runs = [
        stt_run("a", "p", errors=1, words=10, ttfs=0.2, audio_s=3.0, cost_usd=0.01, attempts=2),
        stt_run("b", "p", errors=3, words=5, ttfs=0.4, audio_s=2.0, cost_usd=0.02),
        STTRun(
            item="c", profile="p", provider="p", mode="stream", reference="x", audio_s=9.0, error="boom", attempts=3
        ),
        stt_run("a", "p", errors=0, mode="batch"),
    ]

    stream, batch = summarize(runs)

    assert (stream.profile, stream.mode, stream.runs, stream.failures, stream.successes) == ("p", "stream", 3, 1, 2)
    assert stream.attempts == 6
    assert stream.wer == pytest.approx(4 / 15)
    assert (stream.substitutions, stream.reference_words) == (4, 15)
    assert stream.audio_s == 5.0
    assert stream.cost_usd == pytest.approx(0.03)
    assert stream.metrics["wer"].count == 2
    assert stream.metrics["wer"].median == pytest.approx((0.1 + 0.6) / 2)
    assert stream.metrics["ttfs_s"].p95 == pytest.approx(0.39)
    assert stream.metrics["first_transcript_s"].count == 0
    assert (batch.mode, batch.runs, batch.wer) == ("batch", 1, 0.0)


def test_tts_summary_counts_characters():
    runs = [
        TTSRun(item="t", profile="q", provider="q", mode="stream", reference="hello", characters=5, first_audio_s=0.1),
        TTSRun(item="u", profile="q", provider="q", mode="stream", reference="hi", characters=2, first_audio_s=0.3),
    ]
    (summary,) = summarize(runs)
    assert (summary.kind, summary.characters, summary.wer) == ("tts", 7, None)
    assert summary.metrics["first_audio_s"].median == pytest.approx(0.2)


def test_identical_profiles_differ_by_nothing():
    a = [stt_run(f"f{i}", "a", errors=i % 3, ttfs=0.1 * i) for i in range(20)]
    b = [stt_run(f"f{i}", "b", errors=i % 3, ttfs=0.1 * i) for i in range(20)]
    for metric in ("wer", "ttfs_s"):
        difference = paired_difference(a, b, metric)
        assert (difference.pairs, difference.difference, difference.ci_low, difference.ci_high) == (20, 0, 0, 0)
        assert not difference.significant


def test_a_clear_difference_is_significant():
    a = [stt_run(f"f{i}", "a", errors=1, ttfs=0.30 + 0.01 * (i % 4)) for i in range(30)]
    b = [stt_run(f"f{i}", "b", errors=3, ttfs=0.50 + 0.01 * (i % 5)) for i in range(30)]

    wer = paired_difference(a, b, "wer")
    ttfs = paired_difference(a, b, "ttfs_s")

    assert wer.difference == pytest.approx(0.2)
    assert wer.ci_low == pytest.approx(0.2) and wer.significant
    assert ttfs.difference == pytest.approx(0.2 + 0.01 * (2 - 1.5), abs=0.01)
    assert 0 < ttfs.ci_low < ttfs.difference < ttfs.ci_high
    assert ttfs.significant


def test_noise_is_not_significant_and_the_interval_is_seeded():
    noise = random.Random(7)
    a = [stt_run(f"f{i}", "a", ttfs=noise.gauss(0.5, 0.2)) for i in range(12)]
    b = [stt_run(f"f{i}", "b", ttfs=run.ttfs_s + noise.gauss(0.0, 0.2)) for i, run in enumerate(a)]

    first = paired_difference(a, b, "ttfs_s", seed=3)

    assert first.ci_low < 0 < first.ci_high
    assert not first.significant
    assert paired_difference(a, b, "ttfs_s", seed=3) == first
    assert paired_difference(a, b, "ttfs_s", seed=4).ci_low != first.ci_low
    narrow = paired_difference(a, b, "ttfs_s", seed=3, confidence=0.5)
    assert first.ci_low < narrow.ci_low < narrow.ci_high < first.ci_high


def test_only_items_both_ran_successfully_are_paired():
    a = [stt_run("x", "a", ttfs=0.1), stt_run("y", "a", ttfs=0.2), stt_run("z", "a", ttfs=0.3)]
    b = [
        stt_run("x", "b", ttfs=0.5),
        STTRun(item="y", profile="b", provider="b", mode="stream", reference="x", error="boom"),
        stt_run("w", "b", ttfs=9.0),
        stt_run("z", "b", ttfs=None),
    ]
    difference = paired_difference(a, b, "ttfs_s")
    assert (difference.pairs, difference.mean_a, difference.mean_b) == (1, 0.1, 0.5)
    nothing = paired_difference(a[1:], b[1:2], "ttfs_s")
    assert (nothing.pairs, nothing.difference, nothing.significant) == (0, None, False)


def test_bad_bootstrap_settings():
    runs = [stt_run("x", "a")]
    with pytest.raises(ConfigError, match="resamples"):
        paired_difference(runs, runs, "wer", resamples=0)
    with pytest.raises(ConfigError, match="confidence"):
        paired_difference(runs, runs, "wer", confidence=95)


def test_differences_are_against_the_baseline_per_mode():
    runs = [
        stt_run(f"f{i}", profile, errors=errors, ttfs=0.1, mode=mode)
        for i in range(5)
        for profile, errors in (("a", 1), ("b", 2), ("c", 1))
        for mode in ("stream", "batch")
    ]
    found = differences(runs, metrics=("wer", "ttfs_s", "first_transcript_s"))
    assert {(d.profile_a, d.profile_b, d.mode, d.metric) for d in found} == {
        ("a", profile, mode, metric) for profile in "bc" for mode in ("stream", "batch") for metric in ("wer", "ttfs_s")
    }
    against_c = differences(runs, baseline="c", metrics=("wer",))
    assert sorted((d.profile_b, d.mode, round(d.difference, 9)) for d in against_c) == [
        ("a", "batch", 0.0),
        ("a", "stream", 0.0),
        ("b", "batch", 0.1),
        ("b", "stream", 0.1),
    ]
    with pytest.raises(ConfigError, match=r"baseline profile 'z' has no runs.*allowed: a, b, c"):
        differences(runs, baseline="z")
