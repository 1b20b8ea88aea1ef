"""What a comparison shows: a terminal table, per-run CSV (and JSONL), a summary JSON and a self-contained HTML page.

The table has one row per profile and mode with sample counts, pooled WER, and the median / P95 of each latency.
Differences against the baseline profile come with their bootstrap interval and say "not significant" when the
interval includes 0 (and "too few pairs" under :data:`MIN_PAIRS`). The HTML report holds the same tables, inline SVG
charts (WER against latency, latency distributions, the intervals) and the worst items with the reference and each
profile's hypothesis side by side; it loads nothing.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Final

import attrs

from . import charts
from .metrics import default_normalizer
from .records import Comparison, Difference, MetricSummary, ProfileSummary, STTRun, TTSRun
from .store import STT_RUNS_FILE, TTS_RUNS_FILE

__all__ = [
    "REPORT_FILE",
    "SUMMARY_FILE",
    "format_differences",
    "format_table",
    "render_html",
    "write_csv",
    "write_jsonl",
    "write_reports",
]

REPORT_FILE: Final = "report.html"
SUMMARY_FILE: Final = "summary.json"
OUTLIERS: Final = 10
MIN_PAIRS: Final = 5
LABELS: Final = {
    "wer": "WER",
    "ttfs_s": "TTFS",
    "first_transcript_s": "first text",
    "first_audio_s": "first audio",
    "processing_s": "processing",
    "rtf": "RTF",
    "audio_s": "audio",
    "cost_usd": "cost",
}
STT_LATENCIES: Final = ("ttfs_s", "first_transcript_s", "rtf")
TTS_LATENCIES: Final = ("first_audio_s", "rtf")
SCATTERS: Final = {
    "stt": (("stream", "ttfs_s"), ("batch", "rtf")),
    "tts": (("stream", "first_audio_s"), ("batch", "first_audio_s")),
}
CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; }
td.text, th.text { text-align: left; max-width: 420px; }
.muted { color: #888; }
.sig { font-weight: 600; }
del { background: #fdd; text-decoration: line-through; }
ins { background: #dfd; text-decoration: none; }
figure { margin: 0.5em 0 1.5em; }
figcaption { color: #555; }
"""


def _runs_path(folder: Path, kind: str, suffix: str) -> Path:
    """``stt_runs.csv``, ``tts_runs.jsonl``...: named as the runner names its runs file."""
    return (folder / (STT_RUNS_FILE if kind == "stt" else TTS_RUNS_FILE)).with_suffix(suffix)


# --- numbers ----------------------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "wer":
        return _percent(value)
    if metric == "cost_usd":
        return f"${value:.4f}"
    return f"{value:.2f}" if metric == "rtf" else f"{value:.3f}"


def _spread(metric: str, summary: MetricSummary | None) -> str:
    if summary is None or not summary.count:
        return "-"
    return f"{_value(metric, summary.median)} / {_value(metric, summary.p95)}"


def _signed(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "wer":
        return f"{100 * value:+.1f} pts"
    if metric == "rtf":
        return f"{value:+.3f}"
    if metric == "cost_usd":
        return f"{'-' if value < 0 else '+'}${abs(value):.4f}"
    return f"{value:+.3f} s"


def _interval(difference: Difference) -> str:
    low, high = _signed(difference.metric, difference.ci_low), _signed(difference.metric, difference.ci_high)
    return f"[{low}, {high}]"


def _verdict(difference: Difference) -> str:
    """Whether the interval excludes 0; with fewer than :data:`MIN_PAIRS` pairs no interval is trusted."""
    if difference.ci_low is None:
        return "no interval"
    if difference.pairs < MIN_PAIRS:
        return f"too few pairs (under {MIN_PAIRS})"
    return "significant" if difference.significant else "not significant"


def _cost_per_1k_chars(summary: ProfileSummary) -> str:
    if summary.cost_usd is None or not summary.characters:
        return "-"
    return f"${1000 * summary.cost_usd / summary.characters:.4f}"


# --- terminal ---------------------------------------------------------------------------------------------------


def _summary_rows(comparison: Comparison, *, upper: bool) -> list[tuple[str, ...]]:
    """The summary table, header first; ``upper`` writes the header in capitals (units aside), as terminals show.

    A latency no run measured (TTFS of batch runs, say) has no column.
    """
    measured = {name for summary in comparison.summaries for name, spread in summary.metrics.items() if spread.count}
    latencies = [name for name in (STT_LATENCIES if comparison.kind == "stt" else TTS_LATENCIES) if name in measured]
    names = [
        "profile",
        "mode",
        "provider",
        "ok/runs",
        "retries",
        "WER",
        "S/D/I",
        *(f"{LABELS[name]} med/p95" + ("" if name == "rtf" else " (s)") for name in latencies),
        "audio (s)",
        "cost",
        *(["$/1k chars"] if comparison.kind == "tts" else []),
    ]
    header = tuple(name.upper().replace(" (S)", " (s)") if upper else name for name in names)
    rows = [header]
    for summary in comparison.summaries:
        rows.append(
            (
                summary.profile,
                summary.mode,
                summary.provider,
                f"{summary.successes}/{summary.runs}",
                str(summary.attempts - summary.runs),
                _percent(summary.wer),
                f"{summary.substitutions}/{summary.deletions}/{summary.insertions}" if summary.reference_words else "-",
                *(_spread(name, summary.metrics.get(name)) for name in latencies),
                f"{summary.audio_s:.1f}",
                "-" if summary.cost_usd is None else f"${summary.cost_usd:.4f}",
                *([_cost_per_1k_chars(summary)] if comparison.kind == "tts" else []),
            )
        )
    return rows


def _align(rows: Sequence[Sequence[str]], names: int = 3) -> str:
    """Columns padded to their widest cell: the first ``names`` to the left, the numbers after them to the right."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        left = [cell.ljust(width) for cell, width in zip(row[:names], widths, strict=False)]
        right = [cell.rjust(width) for cell, width in zip(row[names:], widths[names:], strict=True)]
        lines.append("  ".join(left + right).rstrip())
    return "\n".join(lines)


def format_table(comparison: Comparison) -> str:
    """One row per profile and mode: runs, retries, pooled WER with S/D/I, latency median / P95, audio, cost."""
    title = "STT" if comparison.kind == "stt" else "TTS (WER of the judge's round trip)"
    resumed = f"; {comparison.resumed} resumed from an earlier run" if comparison.resumed else ""
    items = len({run.item for run in comparison.runs})
    return f"{title}: {items} item{'s' if items != 1 else ''}{resumed}\n{_align(_summary_rows(comparison, upper=True))}"


def format_differences(comparison: Comparison) -> str:
    """Each profile minus the baseline, paired by item, with the bootstrap interval and whether it is significant."""
    if not comparison.differences:
        return ""
    first = comparison.differences[0]
    level = f"{100 * first.confidence:g}%"
    lines = [
        f"Differences against {first.profile_a} (other - {first.profile_a}, paired by item, "
        f"{level} bootstrap interval of {first.resamples} resamples):"
    ]
    rows = [("PROFILE", "MODE", "METRIC", "PAIRS", "DIFFERENCE", f"{level} INTERVAL", "")]
    rows += [
        (
            difference.profile_b,
            difference.mode,
            LABELS.get(difference.metric, difference.metric),
            str(difference.pairs),
            _signed(difference.metric, difference.difference),
            _interval(difference),
            _verdict(difference),
        )
        for difference in comparison.differences
    ]
    return "\n".join(lines) + "\n" + _align(rows)


# --- files ------------------------------------------------------------------------------------------------------


def write_csv(runs: Sequence[STTRun] | Sequence[TTSRun], path: str | os.PathLike[str]) -> Path:
    """One row per run, one column per field (empty for none); returns the path written."""
    path = Path(path)
    if not runs:
        path.write_text("", encoding="utf-8")
        return path
    names = [field.name for field in attrs.fields(type(runs[0]))]
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=names)
        writer.writeheader()
        for run in runs:
            writer.writerow({key: "" if value is None else value for key, value in run.to_dict().items()})
    return path


def write_jsonl(runs: Sequence[STTRun] | Sequence[TTSRun], path: str | os.PathLike[str]) -> Path:
    """One JSON run a line, as the runs file of a comparison holds them; returns the path written."""
    path = Path(path)
    path.write_text("".join(json.dumps(run.to_dict(), ensure_ascii=False) + "\n" for run in runs), encoding="utf-8")
    return path


def write_reports(comparisons: Sequence[Comparison], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write each comparison's runs as CSV (and JSONL when it kept no runs file), the summaries and differences as
    ``summary.json``, and ``report.html``; returns the paths written."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for each in comparisons:
        if each.runs_file is None:
            written.append(write_jsonl(each.runs, _runs_path(folder, each.kind, ".jsonl")))
        written.append(write_csv(each.runs, _runs_path(folder, each.kind, ".csv")))
    summary = {
        each.kind: {
            "profiles": list(each.profiles),
            "summaries": [item.to_dict() for item in each.summaries],
            "differences": [
                {**item.to_dict(), "significant": item.significant, "verdict": _verdict(item)}
                for item in each.differences
            ],
        }
        for each in comparisons
    }
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (folder / REPORT_FILE).write_text(render_html(comparisons), encoding="utf-8")
    return [*written, folder / SUMMARY_FILE, folder / REPORT_FILE]


# --- HTML -------------------------------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]], text_columns: Sequence[int] = ()) -> str:
    """An HTML table of already escaped cells; the first row is the header."""

    def cell(tag: str, index: int, value: str) -> str:
        kind = ' class="text"' if index in text_columns else ""
        return f"<{tag}{kind}>{value}</{tag}>"

    head = "".join(cell("th", index, value) for index, value in enumerate(rows[0]))
    body = "".join(
        "<tr>" + "".join(cell("td", index, value) for index, value in enumerate(row)) + "</tr>\n" for row in rows[1:]
    )
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _escaped(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    return [[escape(value) for value in row] for row in rows]


def _word_diff(reference: str, hypothesis: str) -> str:
    """The normalized hypothesis as HTML: reference words it missed in ``<del>``, words it added in ``<ins>``."""
    said, heard = default_normalizer(reference).split(), default_normalizer(hypothesis).split()
    parts: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=said, b=heard, autojunk=False).get_opcodes():
        missed, added = escape(" ".join(said[i1:i2])), escape(" ".join(heard[j1:j2]))
        if tag == "equal":
            parts.append(added)
            continue
        if missed:
            parts.append(f"<del>{missed}</del>")
        if added:
            parts.append(f"<ins>{added}</ins>")
    return " ".join(parts)


def _outliers(comparison: Comparison) -> str:
    """The items with the worst WER, each with the reference and every profile's hypothesis side by side."""
    by_item: dict[str, list[STTRun | TTSRun]] = {}
    for run in comparison.runs:
        if run.ok and run.wer is not None:
            by_item.setdefault(run.item, []).append(run)
    worst = sorted(by_item.items(), key=lambda entry: (-max(run.wer or 0.0 for run in entry[1]), entry[0]))
    worst = [(item, runs) for item, runs in worst if any(run.wer for run in runs)][:OUTLIERS]
    if not worst:
        return "<p>No run has a word error.</p>"
    header = ("item", "reference", "profile", "mode", "WER", "hypothesis")
    cells = [f"<th>{name}</th>" if name in ("mode", "WER") else f'<th class="text">{name}</th>' for name in header]
    lines = [f"<table>\n<tr>{''.join(cells)}</tr>"]
    for item, runs in worst:
        span = f' rowspan="{len(runs)}"'
        for index, run in enumerate(runs):
            shared = (
                f'<td class="text"{span}>{escape(item)}</td><td class="text"{span}>{escape(run.reference)}</td>'
                if index == 0
                else ""
            )
            heard = _word_diff(run.reference, run.hypothesis or "")
            lines.append(
                f'<tr>{shared}<td class="text">{escape(run.profile)}</td><td>{run.mode}</td>'
                f'<td>{_percent(run.wer)}</td><td class="text">{heard}</td></tr>'
            )
    return "\n".join(lines) + "\n</table>"


def _failures(comparison: Comparison) -> str:
    failed = [run for run in comparison.runs if not run.ok]
    if not failed:
        return "<p>No run failed.</p>"
    rows = [["item", "profile", "mode", "attempts", "error"]]
    rows += [
        [run.item, run.profile, run.mode, str(run.attempts), f"{run.error_type or 'error'}: {run.error}"]
        for run in failed
    ]
    return _table(_escaped(rows), text_columns=(0, 1, 4))


def _differences_html(comparison: Comparison) -> str:
    if not comparison.differences:
        return "<p>One profile only: nothing to compare against.</p>"
    rows = [["profile", "mode", "metric", "pairs", "baseline", "this profile", "difference", "interval", ""]]
    for difference in comparison.differences:
        verdict = _verdict(difference)
        rows.append(
            [
                escape(difference.profile_b),
                difference.mode,
                LABELS.get(difference.metric, difference.metric),
                str(difference.pairs),
                _value(difference.metric, difference.mean_a),
                _value(difference.metric, difference.mean_b),
                _signed(difference.metric, difference.difference),
                _interval(difference),
                f'<span class="{"sig" if verdict == "significant" else "muted"}">{verdict}</span>',
            ]
        )
    first = comparison.differences[0]
    note = (
        f"<p>Each row is this profile minus <b>{escape(first.profile_a)}</b>, over the items both ran successfully "
        f"(paired by item). The interval is the {100 * first.confidence:g}% percentile bootstrap interval of "
        f"{first.resamples} resamples (seed {first.seed}); a difference whose interval includes 0 is "
        "<b>not significant</b>: these items cannot tell the two profiles apart on that metric, and under "
        f"{MIN_PAIRS} pairs no interval is trusted. WER differences are of pooled WER, in percentage points; "
        "others are of the mean.</p>"
    )
    return note + _table(rows, text_columns=(0,)) + _interval_figures(comparison)


def _interval_figures(comparison: Comparison) -> str:
    """One chart per metric: each profile's difference from the baseline with its interval."""
    figures = []
    baseline = comparison.differences[0].profile_a
    for metric in dict.fromkeys(difference.metric for difference in comparison.differences):
        scale = 100.0 if metric == "wer" else 1.0
        rows = [
            charts.Interval(
                f"{d.profile_b} ({d.mode})",
                scale * (d.difference or 0.0),
                scale * d.ci_low,
                scale * (d.ci_high or 0.0),
                significant=_verdict(d) == "significant",
                note=_verdict(d),
            )
            for d in comparison.differences
            if d.metric == metric and d.ci_low is not None
        ]
        if rows:
            unit = " (percentage points)" if metric == "wer" else "" if metric == "rtf" else " (s)"
            label = f"{LABELS.get(metric, metric)} difference against {baseline}{unit}"
            caption = f"{label}; grey: not significant, or too few pairs."
            figures.append(_figure(charts.intervals(rows, label), caption))
    return "".join(figures)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>\n{svg}\n<figcaption>{escape(caption)}</figcaption>\n</figure>\n"


def _color(comparison: Comparison, profile: str) -> str:
    """A profile's colour, the same in every chart of the report."""
    profiles = list(comparison.profiles)
    return charts.color(profiles.index(profile) if profile in profiles else len(profiles))


def _groups(comparison: Comparison) -> dict[tuple[str, str], list[STTRun | TTSRun]]:
    groups: dict[tuple[str, str], list[STTRun | TTSRun]] = {}
    for run in comparison.runs:
        groups.setdefault((run.profile, run.mode), []).append(run)
    return groups


def _scatter(comparison: Comparison, x_metric: str, summaries: Sequence[ProfileSummary]) -> str | None:
    groups = _groups(comparison)
    series = []
    for summary in summaries:
        runs = [run for run in groups.get((summary.profile, summary.mode), []) if run.ok]
        points = [
            charts.Point(
                getattr(run, x_metric),
                100 * run.wer,
                f"{run.item}: WER {_percent(run.wer)}, {LABELS[x_metric]} {_value(x_metric, getattr(run, x_metric))}",
            )
            for run in runs
            if run.wer is not None and getattr(run, x_metric) is not None
        ]
        median = summary.metrics.get(x_metric)
        centre = None
        if summary.wer is not None and median is not None and median.median is not None:
            centre = charts.Point(
                median.median,
                100 * summary.wer,
                f"{summary.profile}: pooled WER {_percent(summary.wer)}, median {LABELS[x_metric]} "
                f"{_value(x_metric, median.median)} (n={median.count})",
            )
        if points:
            name = f"{summary.profile} ({summary.mode})"
            series.append(charts.Series(name, points, centre, _color(comparison, summary.profile)))
    if not series:
        return None
    unit = "" if x_metric == "rtf" else " (s)"
    return charts.scatter(series, f"{LABELS[x_metric]}{unit}", "WER (%)")


def _charts(comparison: Comparison) -> str:
    """WER against the headline latency per mode, then the distribution of each latency."""
    figures = []
    by_mode: dict[str, list[ProfileSummary]] = {}
    for summary in comparison.summaries:
        by_mode.setdefault(summary.mode, []).append(summary)
    for mode, metric in SCATTERS[comparison.kind]:
        svg = _scatter(comparison, metric, by_mode.get(mode, []))
        if svg is not None:
            caption = (
                f"{mode}: WER against {LABELS[metric]}, one small dot per item; the large dot is the profile's pooled "
                f"WER at its median {LABELS[metric]}. Lower left is better."
            )
            figures.append(_figure(svg, caption))
    groups = _groups(comparison)
    for metric in STT_LATENCIES if comparison.kind == "stt" else TTS_LATENCIES:
        rows = []
        for (profile, mode), runs in groups.items():
            values = [getattr(run, metric) for run in runs if run.ok and getattr(run, metric) is not None]
            if values:
                rows.append(charts.Group(f"{profile} ({mode})", values, _color(comparison, profile)))
        if rows:
            unit = "" if metric == "rtf" else " (s)"
            caption = f"{LABELS[metric]}: box P25-P75, thick line the median, whiskers P5-P95, one dot per item."
            figures.append(_figure(charts.distributions(rows, f"{LABELS[metric]}{unit}"), caption))
    return "".join(figures)


def _summary_html(comparison: Comparison) -> str:
    return _table(_escaped(_summary_rows(comparison, upper=False)), text_columns=(0, 1, 2))


def _section(comparison: Comparison) -> str:
    kind = "Speech to text" if comparison.kind == "stt" else "Text to speech"
    items = len({run.item for run in comparison.runs})
    judge = {run.judge for run in comparison.runs if isinstance(run, TTSRun) and run.judge}
    judged = f" Intelligibility is the WER of {', '.join(sorted(judge))} transcribing the audio back." if judge else ""
    parts = [
        f"<h2>{kind}</h2>",
        f"<p>{items} items x {len(comparison.profiles)} profiles ({escape(', '.join(comparison.profiles))}); "
        f"{len(comparison.runs)} runs, {sum(not run.ok for run in comparison.runs)} failed. WER is pooled over the "
        f"successful runs (all errors over all reference words); other cells are median / P95.{judged}</p>",
        _summary_html(comparison),
        "<h3>Differences</h3>",
        _differences_html(comparison),
        "<h3>Charts</h3>",
        _charts(comparison),
        f"<h3>Outliers: the items with the worst WER (up to {OUTLIERS})</h3>",
        "<p>Each profile's hypothesis, normalized as for WER: <del>struck</del> words were said but not heard, "
        "<ins>marked</ins> words were heard but not said.</p>",
        _outliers(comparison),
        "<h3>Failures</h3>",
        _failures(comparison),
    ]
    return "\n".join(parts)


def render_html(comparisons: Sequence[Comparison], *, generated: datetime | None = None) -> str:
    """One self-contained page (inline CSS and SVG, no script) reporting every comparison."""
    stamp = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(_section(comparison) for comparison in comparisons)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>speechbridge compare</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n<h1>speechbridge compare</h1>\n"
        f'<p class="muted">Generated {stamp}.</p>\n{body}\n</body>\n</html>\n'
    )
