"""speechbridge.migrate: the Migration result, its TOML writer, and reading a vendor's options from a file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from speechbridge.config import Config
from speechbridge.errors import ConfigError
from speechbridge.migrate import Migration, Unmapped, as_bool, as_int, read_options, toml_value, write_toml


def test_write_toml_round_trips_through_tomllib():
    tables = {
        "stt": {"provider": "x", "endpointing": 300, "ratio": 0.25, "on": True, "off": False, "terms": ["a", "b c"]},
        "providers.deepgram": {"api_key_env": "DEEPGRAM_API_KEY"},
        "odd names": {"with space": 'quote " backslash \\ newline \n tab \t é'},
    }
    text = write_toml(tables)
    assert tomllib.loads(text) == {
        "stt": tables["stt"],
        "providers": {"deepgram": {"api_key_env": "DEEPGRAM_API_KEY"}},
        "odd names": {"with space": 'quote " backslash \\ newline \n tab \t é'},
    }
    assert text.startswith('[stt]\nprovider = "x"\nendpointing = 300\n')
    assert '["providers".deepgram]' not in text and "[providers.deepgram]" in text


@pytest.mark.parametrize("value", [None, {"a": 1}, float("nan"), float("inf"), b"bytes", [1, None]])
def test_values_toml_cannot_hold_are_refused(value: object):
    with pytest.raises(ConfigError, match=r"TOML value"):
        toml_value(value)


def test_migration_to_toml_is_config_with_comments():
    migration = Migration(
        "acme",
        {"stt": {"provider": "local", "language": "en"}},
        audio={"stt": "mulaw_8000"},
        unmapped=(Unmapped("diarize", True, "no speakers"),),
        notes=('first line\n\n[stt]\nprovider = "other"', "x" * 300),
    )
    text = migration.to_toml()
    assert tomllib.loads(text) == {"stt": {"provider": "local", "language": "en"}}
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert "# declare the stt audio: mulaw_8000, in stt.stream(format=...)" in comments
    assert '# provider = "other"' in comments and "#" in comments
    assert all(len(line) <= 120 for line in text.splitlines())
    assert Config.from_dict(tomllib.loads(text)).stt_section.options == {"language": "en"}
    assert json.loads(json.dumps(migration.to_json()))["unmapped"] == [
        {"field": "diarize", "value": True, "reason": "no speakers"}
    ]


def test_read_options_from_json_toml_and_query_strings(tmp_path: Path):
    (tmp_path / "a.json").write_text('{"model": "nova-3", "interim_results": true}')
    assert read_options(tmp_path / "a.json") == {"model": "nova-3", "interim_results": True}
    (tmp_path / "b.toml").write_text('model = "nova-3"\nendpointing = 300\n')
    assert read_options(tmp_path / "b.toml") == {"model": "nova-3", "endpointing": 300}
    (tmp_path / "c.txt").write_text("wss://api.example.com/v1/listen?model=nova-3&endpointing=300&vad=false&k=a&k=b\n")
    assert read_options(tmp_path / "c.txt") == {"model": "nova-3", "endpointing": 300, "vad": False, "k": ["a", "b"]}
    (tmp_path / "d.txt").write_text("model=nova-3&smart_format=true")
    assert read_options(tmp_path / "d.txt") == {"model": "nova-3", "smart_format": True}


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("bad.json", '{"model": ', r"bad.json is not valid JSON"),
        ("list.json", "[1, 2]", r"must hold a JSON object of options, not a list"),
        ("bad.toml", "model = ", r"bad.toml is not valid TOML"),
        ("prose.txt", "use nova 3 please", r"is not options \(accepted: a JSON object, a .toml file, a query"),
        ("empty.txt", "", r"is not options"),
    ],
)
def test_read_options_refuses_what_is_not_options(tmp_path: Path, name: str, content: str, error: str):
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError, match=error):
        read_options(tmp_path / name)


def test_read_options_of_a_missing_or_binary_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"cannot read .*missing.json: No such file"):
        read_options(tmp_path / "missing.json")
    (tmp_path / "audio.json").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigError, match=r"not UTF-8 text"):
        read_options(tmp_path / "audio.json")


def test_vendor_spellings_of_booleans_and_numbers():
    assert as_bool("x", "true") is True and as_bool("x", "False") is False and as_bool("x", True) is True
    assert as_int("x", "300") == 300 and as_int("x", 300) == 300 and as_int("x", 300.0) == 300
    for wrong in ("yes", 1, None):
        with pytest.raises(ConfigError, match=r"x must be true or false"):
            as_bool("x", wrong)
    for wrong in ("3.5", True, 2.5, "ten"):
        with pytest.raises(ConfigError, match=r"x must be a whole number"):
            as_int("x", wrong)
