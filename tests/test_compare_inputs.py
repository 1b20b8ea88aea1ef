"""Comparison inputs (folders, CSV and JSONL manifests, texts), records and the resumable runs file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechbridge.audio import PCMAudio, encode
from speechbridge.compare import (
    AudioItem,
    Difference,
    MetricSummary,
    ProfileSummary,
    RunStore,
    STTRun,
    TextItem,
    TTSRun,
    load_audio_items,
    load_texts,
)
from speechbridge.errors import ConfigError

WAV = encode(PCMAudio(bytes(3200), 16000), "wav")


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_folder_pairs_audio_with_transcripts_recursively(tmp_path):
    write(tmp_path / "b.wav", WAV)
    write(tmp_path / "b.txt", "  second one \n")
    write(tmp_path / "calls" / "a.wav", WAV)
    write(tmp_path / "calls" / "a.txt", "first")
    write(tmp_path / "notes.txt", "not a transcript: no audio beside it")

    items = load_audio_items(tmp_path)

    assert items == [
        AudioItem("b", tmp_path / "b.wav", "second one"),
        AudioItem("calls/a", tmp_path / "calls" / "a.wav", "first"),
    ]


def test_audio_without_transcript_is_an_error_not_skipped(tmp_path):
    write(tmp_path / "a.wav", WAV)
    with pytest.raises(ConfigError, match=r"a\.wav has no transcript.*a\.txt"):
        load_audio_items(tmp_path)


def test_empty_transcript_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="holds no recordings"):
        load_audio_items(tmp_path)
    write(tmp_path / "a.wav", WAV)
    write(tmp_path / "a.txt", "   ")
    with pytest.raises(ConfigError, match="is empty"):
        load_audio_items(tmp_path)


def test_csv_manifest_paths_are_relative_to_it(tmp_path):
    write(tmp_path / "audio" / "one.wav", WAV)
    manifest = write(tmp_path / "set.csv", "audio,text,id\naudio/one.wav,Hello there,greeting\naudio/one.wav,again,\n")

    items = load_audio_items(manifest)

    assert items == [
        AudioItem("greeting", tmp_path / "audio" / "one.wav", "Hello there"),
        AudioItem("audio/one", tmp_path / "audio" / "one.wav", "again"),
    ]


def test_jsonl_manifest(tmp_path):
    write(tmp_path / "x.wav", WAV)
    manifest = write(
        tmp_path / "set.jsonl", '{"audio": "x.wav", "text": "one"}\n\n{"id": "y", "audio": "x.wav", "text": "two"}\n'
    )

    assert [(item.id, item.reference) for item in load_audio_items(manifest)] == [("x", "one"), ("y", "two")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.csv", "audio,transcript\nx.wav,hi\n", "unknown column 'transcript'.*allowed: id, audio, text"),
        ("m.csv", "audio,text\nmissing.wav,hi\n", r"row 1: recording .*missing\.wav does not exist"),
        ("m.csv", "audio,text\n,hi\n", "'audio' must be the path of a recording"),
        ("m.csv", "audio,text\nx.wav,\n", "'text' must be non-empty text"),
        ("m.jsonl", '{"audio": "x.wav", "text": "hi"}\n{oops\n', "line 2: not JSON"),
        ("m.jsonl", '["x.wav", "hi"]\n', "each line is a JSON object, not list"),
        ("m.jsonl", '{"audio": "x.wav", "text": "hi", "lang": "en"}\n', "unknown key 'lang'"),
        ("m.jsonl", '{"audio": "x.wav", "text": "a"}\n{"audio": "x.wav", "text": "b"}\n', "id 'x' is used twice"),
    ],
)
def test_bad_manifests_say_what_is_wrong(tmp_path, name, content, message):
    write(tmp_path / "x.wav", WAV)
    with pytest.raises(ConfigError, match=message):
        load_audio_items(write(tmp_path / name, content))


def test_a_source_that_is_neither_folder_nor_manifest(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist.*allowed: a folder of audio files"):
        load_audio_items(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="neither a folder nor a manifest"):
        load_audio_items(write(tmp_path / "a.wav", WAV))


def test_texts_from_txt_csv_and_jsonl(tmp_path):
    assert load_texts(write(tmp_path / "t.txt", "Hello.\n\n  Good bye  \n")) == [
        TextItem("text-001", "Hello."),
        TextItem("text-003", "Good bye"),
    ]
    assert load_texts(write(tmp_path / "t.csv", "id,text\nhi,Hello\n")) == [TextItem("hi", "Hello")]
    assert load_texts(write(tmp_path / "t.jsonl", '{"text": "Hello"}\n')) == [TextItem("text-001", "Hello")]


def test_bad_texts_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_texts(tmp_path / "none.txt")
    with pytest.raises(ConfigError, match=r"is not a text file.*allowed: .txt, .csv, .jsonl"):
        load_texts(write(tmp_path / "t.md", "hi"))
    with pytest.raises(ConfigError, match="holds no text"):
        load_texts(write(tmp_path / "t.txt", "\n \n"))


def test_runs_round_trip_through_json():
    run = STTRun(item="a", profile="p", provider="local", mode="stream", reference="hi", wer=0.5, ttfs_s=0.3)
    tts = TTSRun(item="t", profile="q", provider="local", mode="batch", reference="hi", characters=2, audio_s=1.0)
    summary = ProfileSummary(
        kind="stt", profile="p", provider="local", mode="stream", runs=2, failures=1, attempts=3,
        metrics={"wer": MetricSummary(count=1, mean=0.5, median=0.5, p95=0.5, minimum=0.5, maximum=0.5)},
    )  # fmt: skip
    difference = Difference(metric="wer", mode="batch", profile_a="p", profile_b="q", pairs=3, ci_low=0.1, ci_high=0.2)
    for record in (run, tts, summary, difference):
        assert type(record).from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert difference.significant
    assert not Difference(
        metric="wer", mode="batch", profile_a="p", profile_b="q", pairs=3, ci_low=-0.1, ci_high=0.2
    ).significant


def test_records_reject_unknown_keys_missing_keys_and_bad_modes():
    data = STTRun(item="a", profile="p", provider="x", mode="batch", reference="hi").to_dict()
    with pytest.raises(ConfigError, match="unknown key 'colour' in a STT run"):
        STTRun.from_dict({**data, "colour": "red"})
    with pytest.raises(ConfigError, match="needs 'reference'"):
        STTRun.from_dict({key: value for key, value in data.items() if key != "reference"})
    with pytest.raises(ConfigError, match=r"unknown mode 'live'.*allowed: stream, batch"):
        STTRun.from_dict({**data, "mode": "live"})


def test_store_keeps_the_latest_run_of_each_key(tmp_path):
    store = RunStore(tmp_path / "out" / "runs.jsonl", STTRun)
    assert store.load() == {}
    failed = STTRun(item="a", profile="p", provider="x", mode="batch", reference="hi", error="boom")
    fixed = STTRun(item="a", profile="p", provider="x", mode="batch", reference="hi", hypothesis="hi")
    other = STTRun(item="a", profile="p", provider="x", mode="stream", reference="hi")
    for run in (failed, other, fixed):
        store.append(run)

    assert store.load() == {fixed.key: fixed, other.key: other}
    assert len(store.path.read_text().splitlines()) == 3


def test_store_names_the_bad_line(tmp_path):
    path = write(tmp_path / "runs.jsonl", json.dumps({"item": "a"}) + "\n")
    with pytest.raises(ConfigError, match=r"runs\.jsonl, line 1: a STT run needs"):
        RunStore(path, STTRun).load()
    write(path, "\n{not json\n")
    with pytest.raises(ConfigError, match="line 2: not JSON"):
        RunStore(path, STTRun).load()
