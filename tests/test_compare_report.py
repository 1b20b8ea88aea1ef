"""The comparison report: terminal table, differences, CSV, summary JSON, and the HTML page with its SVG charts."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from speechbridge.compare import charts
from speechbridge.compare.metrics import word_errors
from speechbridge.compare.records import Comparison, Difference, STTRun, TTSRun
from speechbridge.compare.report import (
    REPORT_FILE,
    SUMMARY_FILE,
    format_differences,
    format_table,
    render_html,
    write_csv,
    write_reports,
)
from speechbridge.compare.stats import differences, summarize

REFERENCE = "the quick brown fox jumps over the lazy dog"
SVG = "{http://www.w3.org/2000/svg}"


def stt_run(item: str, profile: str, hypothesis: str, ttfs_s: float, mode: str = "stream", **fields) -> STTRun:
    errors = word_errors(REFERENCE, hypothesis)
    return STTRun(
        item=item,
        profile=profile,
        provider=f"{profile}-vendor",
        mode=mode,
        reference=REFERENCE,
        hypothesis=hypothesis,
        audio_s=3.0,
        paced=True,
        wer=errors.wer,
        substitutions=errors.substitutions,
        deletions=errors.deletions,
        insertions=errors.insertions,
        hits=errors.hits,
        reference_words=errors.reference_words,
        first_transcript_s=ttfs_s / 2,
        speech_end_s=2.8,
        ttfs_s=ttfs_s,
        processing_s=3.1,
        rtf=1.03,
        **fields,
    )


def failed_run(item: str, profile: str) -> STTRun:
    return STTRun(
        item=item,
        profile=profile,
        provider=f"{profile}-vendor",
        mode="stream",
        reference=REFERENCE,
        attempts=3,
        error="the connection dropped",
        error_type="TransportError",
    )


def comparison(runs: list[STTRun], kind: str = "stt") -> Comparison:
    profiles = tuple(dict.fromkeys(run.profile for run in runs))
    return Comparison(
        kind=kind,  # type: ignore[arg-type]
        profiles=profiles,
        runs=runs,
        summaries=summarize(runs),
        differences=differences(runs, resamples=500),
    )


@pytest.fixture
def clear_winner() -> Comparison:
    """Profile "fast" hears everything at 0.2-0.3 s; "slow" drops a word on every item at 0.8-0.9 s and fails once."""
    runs = [stt_run(f"item-{n:02d}", "fast", REFERENCE, 0.2 + n / 100) for n in range(10)]
    dropped = "the quick brown fox jumps over the dog"
    runs += [stt_run(f"item-{n:02d}", "slow", dropped, 0.8 + n / 100) for n in range(9)]
    runs.append(failed_run("item-09", "slow"))
    return comparison(runs)


def table_row(text: str, profile: str) -> list[str]:
    rows = [line.split() for line in text.splitlines()]
    return next(row for row in rows if row and row[0] == profile)


def test_table_has_counts_pooled_wer_and_median_p95(clear_winner: Comparison):
    text = format_table(clear_winner)
    assert text.splitlines()[0] == "STT: 10 items"
    header = text.splitlines()[1]
    for column in ("PROFILE", "OK/RUNS", "RETRIES", "WER", "S/D/I", "TTFS MED/P95 (s)", "RTF MED/P95", "COST"):
        assert column in header
    fast, slow = table_row(text, "fast"), table_row(text, "slow")
    assert fast[:7] == ["fast", "stream", "fast-vendor", "10/10", "0", "0.0%", "0/0/0"]
    assert slow[:7] == ["slow", "stream", "slow-vendor", "9/10", "2", "11.1%", "0/9/0"]
    ttfs = clear_winner.summaries[1].metrics["ttfs_s"]
    assert f"{ttfs.median:.3f} / {ttfs.p95:.3f}" in " ".join(slow)
    assert "0.840 / 0.876" in " ".join(slow)


def test_table_mentions_resumed_runs_and_tts_columns():
    run = TTSRun(
        item="t1", profile="voice", provider="acme", mode="stream", reference="hello there", characters=11,
        judge="local", hypothesis="hello there", wer=0.0, substitutions=0, deletions=0, insertions=0, hits=2,
        reference_words=2, audio_s=1.0, first_audio_s=0.12, processing_s=0.2, rtf=0.2, cost_usd=0.00033,
    )  # fmt: skip
    tts = attrs.evolve(comparison([run], kind="tts"), resumed=1)  # type: ignore[list-item]
    text = format_table(tts)
    assert text.splitlines()[0] == "TTS (WER of the judge's round trip): 1 item; 1 resumed from an earlier run"
    assert "FIRST AUDIO MED/P95 (s)" in text and "TTFS" not in text
    assert "$/1K CHARS" in text.splitlines()[1]
    assert table_row(text, "voice")[-5:] == ["/", "0.20", "1.0", "$0.0003", "$0.0300"]
    assert "0.120 / 0.120" in text


def test_differences_say_whether_they_are_significant(clear_winner: Comparison):
    text = format_differences(clear_winner)
    assert text.startswith("Differences against fast (other - fast, paired by item, 95% bootstrap interval of 500")
    wer, ttfs = table_row(text, "slow"), next(row for row in map(str.split, text.splitlines()) if "TTFS" in row)
    assert wer[2:5] == ["WER", "9", "+11.1"]
    assert wer[-1] == "significant" and "not" not in wer
    assert ttfs[-1] == "significant" and "+0.600" in ttfs


def test_a_difference_whose_interval_holds_zero_is_not_significant():
    runs = [stt_run(f"i{n}", "a", REFERENCE, 0.5 + (n % 2) / 10) for n in range(8)]
    runs += [stt_run(f"i{n}", "b", REFERENCE, 0.6 - (n % 2) / 10) for n in range(8)]
    text = format_differences(comparison(runs))
    ttfs = next(line for line in text.splitlines() if "TTFS" in line)
    assert ttfs.endswith("not significant")
    assert "+0.000 s" in ttfs


def test_too_few_pairs_are_never_called_significant():
    runs = [stt_run("i1", "a", REFERENCE, 0.2), stt_run("i2", "a", REFERENCE, 0.2)]
    runs += [stt_run("i1", "b", REFERENCE, 0.9), stt_run("i2", "b", REFERENCE, 0.91)]
    text = format_differences(comparison(runs))
    ttfs = next(line for line in text.splitlines() if "TTFS" in line)
    assert ttfs.endswith("too few pairs (under 5)")


def test_one_profile_has_no_differences():
    assert format_differences(comparison([stt_run("i1", "a", REFERENCE, 0.2)])) == ""


def test_csv_has_one_row_per_run_and_every_field(clear_winner: Comparison, tmp_path: Path):
    path = write_csv(clear_winner.runs, tmp_path / "runs.csv")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 20
    assert list(rows[0]) == list(clear_winner.runs[0].to_dict())
    failed = next(row for row in rows if row["error"])
    assert [failed[key] for key in ("item", "attempts", "error_type", "wer")] == ["item-09", "3", "TransportError", ""]
    assert float(rows[0]["ttfs_s"]) == pytest.approx(0.2)


def test_csv_of_no_runs_is_empty(tmp_path: Path):
    assert write_csv([], tmp_path / "none.csv").read_text() == ""


def test_write_reports_writes_csv_summary_and_html(clear_winner: Comparison, tmp_path: Path):
    written = write_reports([clear_winner], tmp_path / "out")
    assert [path.name for path in written] == ["stt_runs.jsonl", "stt_runs.csv", SUMMARY_FILE, REPORT_FILE]
    lines = (tmp_path / "out" / "stt_runs.jsonl").read_text().splitlines()
    assert [STTRun.from_dict(json.loads(line)) for line in lines] == clear_winner.runs
    summary = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())
    assert summary["stt"]["profiles"] == ["fast", "slow"]
    assert [row["profile"] for row in summary["stt"]["summaries"]] == ["fast", "slow"]
    wer = next(row for row in summary["stt"]["differences"] if row["metric"] == "wer")
    assert (wer["significant"], wer["verdict"]) == (True, "significant")
    assert Difference.from_dict({k: v for k, v in wer.items() if k not in ("significant", "verdict")}).pairs == 9


def test_write_reports_leaves_the_runs_file_of_a_comparison_alone(clear_winner: Comparison, tmp_path: Path):
    kept = attrs.evolve(clear_winner, runs_file=tmp_path / "elsewhere.jsonl")
    assert [path.name for path in write_reports([kept], tmp_path)] == ["stt_runs.csv", SUMMARY_FILE, REPORT_FILE]


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", html, re.S)]


def test_html_is_self_contained_with_well_formed_charts(clear_winner: Comparison):
    html = render_html([clear_winner], generated=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert "Generated 2026-01-02 03:04 UTC" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=", html)
    assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"] * len(svgs(html))
    charts_ = svgs(html)
    titles = [svg.get("aria-label") for svg in charts_]
    assert "WER (%) against TTFS (s)" in titles
    assert "distribution of TTFS (s)" in titles
    assert any(title.startswith("confidence intervals of WER difference") for title in titles)
    scatter = charts_[titles.index("WER (%) against TTFS (s)")]
    points = [circle for circle in scatter.iter(f"{SVG}circle") if circle.find(f"{SVG}title") is not None]
    assert len(points) == 19 + 2  # every successful run, and each profile's centre


def test_html_tables_tell_significance_failures_and_counts(clear_winner: Comparison):
    html = render_html([clear_winner])
    assert "10 items x 2 profiles (fast, slow); 20 runs, 1 failed." in html
    assert '<span class="sig">significant</span>' in html
    assert "<td>9/10</td>" in html
    assert "TransportError: the connection dropped" in html


def test_outliers_show_the_reference_and_each_hypothesis_side_by_side():
    runs = [
        stt_run("good", "a", REFERENCE, 0.2),
        stt_run("bad", "a", "the quick brown box jumps over the lazy dog dog", 0.2),
        stt_run("good", "b", REFERENCE, 0.2),
        stt_run("bad", "b", "the quick brown fox jumps over the lazy", 0.2),
    ]
    html = render_html([comparison(runs)])
    outliers = html[html.index("<h3>Outliers") : html.index("<h3>Failures")]
    assert outliers.count('rowspan="2"') == 2 and "good" not in outliers
    assert "the quick brown <del>fox</del> <ins>box</ins> jumps over the lazy dog <ins>dog</ins>" in outliers
    assert "the quick brown fox jumps over the lazy <del>dog</del>" in outliers
    assert f'<td class="text" rowspan="2">{REFERENCE}</td>' in outliers


def test_transcripts_are_escaped():
    runs = [stt_run("<b>x</b>", "a<script>", "<script>alert(1)</script> fox", 0.2)]
    html = render_html([comparison(runs)])
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_a_perfect_run_has_no_outliers_and_no_failures():
    html = render_html([comparison([stt_run("i1", "a", REFERENCE, 0.2)])])
    assert "No run has a word error." in html and "No run failed." in html
    assert "One profile only" in html


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.13, 0.87, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-3, 12, [-5, 0, 5, 10, 15]),
    ],
)
def test_axis_ticks_are_round_and_cover_the_data(low: float, high: float, expected: list[float]):
    assert charts._ticks(low, high) == pytest.approx(expected)


def test_scatter_places_points_inside_the_plot():
    series = [charts.Series("a", [charts.Point(0.5, 10.0, "x"), charts.Point(2.0, 0.0, "y")], charts.Point(1, 5, "c"))]
    svg = ET.fromstring(charts.scatter(series, "TTFS (s)", "WER (%)"))
    width, height = (float(value) for value in svg.get("viewBox", "").split()[2:])
    for circle in svg.iter(f"{SVG}circle"):
        assert 0 <= float(circle.get("cx", -1)) <= width and 0 <= float(circle.get("cy", -1)) <= height
    low, high = (circle for circle in svg.iter(f"{SVG}circle") if circle.get("r") == "3.5")
    assert float(low.get("cy", 0)) < float(high.get("cy", 0))  # WER 10 is drawn higher than WER 0
    assert float(low.get("cx", 0)) < float(high.get("cx", 0))


def test_distribution_of_one_value_and_long_names():
    svg = charts.distributions([charts.Group("a-very-long-profile-name-indeed (stream)", [0.3])], "TTFS (s)")
    tree = ET.fromstring(svg)
    assert not list(tree.iter(f"{SVG}rect"))  # no box for a single value
    assert len(list(tree.iter(f"{SVG}circle"))) == 1
    assert "a-very-long-profile-name-\u2026<" in svg and "a-very-long-profile-name-indeed (stream) (n=1)" in svg


def test_intervals_grey_out_what_is_not_significant():
    rows = [charts.Interval("b", 0.5, 0.2, 0.8, True), charts.Interval("c", 0.1, -0.2, 0.4, False)]
    tree = ET.fromstring(charts.intervals(rows, "TTFS difference (s)"))
    strokes = [line.get("stroke") for line in tree.iter(f"{SVG}line") if line.get("stroke-width") == "3"]
    assert strokes == [charts.color(1), "#999"]


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "compare_offline.py"


async def test_the_offline_example_compares_local_with_a_gradium_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("speechbridge_gradium")
    spec = importlib.util.spec_from_file_location("compare_offline", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr(example, "SENTENCES", {"hello": "Good morning to you."})
    monkeypatch.chdir(tmp_path)  # no speechbridge.toml
    await example.run(tmp_path / "demo", fast=True)
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("local ", "gradium-front "))]
    assert [row[:4] for row in rows[:4]] == [
        ["local", "stream", "local", "1/1"],
        ["local", "batch", "local", "1/1"],
        ["gradium-front", "stream", "gradium", "1/1"],
        ["gradium-front", "batch", "gradium", "1/1"],
    ]
    assert sorted(path.name for path in (tmp_path / "demo" / "data").iterdir()) == ["hello.txt", "hello.wav"]
    results = tmp_path / "demo" / "results"
    assert {path.name for path in results.iterdir()} == {"stt_runs.jsonl", "stt_runs.csv", SUMMARY_FILE, REPORT_FILE}


def test_latencies_no_run_measured_have_no_column():
    runs = [attrs.evolve(stt_run(f"i{n}", "a", REFERENCE, 0.2, mode="batch"), ttfs_s=None) for n in range(3)]
    header = format_table(comparison(runs)).splitlines()[1]
    assert "TTFS" not in header
    assert "FIRST TEXT MED/P95 (s)" in header and "RTF MED/P95" in header
