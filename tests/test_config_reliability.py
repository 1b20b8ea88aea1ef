"""The ``reliability`` tables of speechbridge.toml: where they may be written, how they merge, how they fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechbridge import cli
from speechbridge.config import Config, load_config
from speechbridge.errors import ConfigError
from speechbridge.plugins import ProviderRegistry
from speechbridge.reliability import Reliability

LAYERED = """
[stt]
provider = "code"
reliability = { backoff_s = 0.5, reconnects = 2 }

[tts]
provider = "code"

[providers.code]
model = "shared"
reliability = { retries = 5, dead_peer_timeout_s = 5, backoff_s = 0.1 }

[profiles.patient]
reliability = { retries = 9, max_backoff_s = 30 }
stt = { reliability = { retries = 7 } }
tts = { provider = "code" }

[profiles.plain]
stt = { provider = "keyed" }
"""


@pytest.fixture
def layered(tmp_path: Path, installed: ProviderRegistry, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEYED_API_KEY", "k")
    path = tmp_path / "speechbridge.toml"
    path.write_text(LAYERED)
    return path


@pytest.fixture
def config(layered: Path) -> Config:
    return load_config(layered)


def test_tables_merge_key_by_key_from_provider_to_section(config: Config) -> None:
    stt = config.stt()
    assert stt.reliability == Reliability(retries=5, dead_peer_timeout_s=5, backoff_s=0.5, reconnects=2)
    assert config.tts().reliability == Reliability(retries=5, dead_peer_timeout_s=5, backoff_s=0.1)
    assert config.stt().settings.model == "shared"  # the table is not taken for a setting


def test_a_profile_and_its_kinds_sit_above_the_sections(config: Config) -> None:
    stt = config.stt(profile="patient")
    assert stt.reliability == Reliability(
        retries=7, max_backoff_s=30, dead_peer_timeout_s=5, backoff_s=0.5, reconnects=2
    )
    tts = config.tts(profile="patient")
    assert tts.reliability == Reliability(retries=9, max_backoff_s=30, dead_peer_timeout_s=5, backoff_s=0.1)


def test_arguments_win_a_mapping_merges_and_a_policy_replaces(config: Config) -> None:
    merged = config.stt(reliability={"retries": 0})
    assert merged.reliability == Reliability(retries=0, dead_peer_timeout_s=5, backoff_s=0.5, reconnects=2)
    assert config.stt(reliability=Reliability(retries=1)).reliability == Reliability(retries=1)


def test_a_provider_table_stays_with_its_provider(config: Config) -> None:
    assert config.stt(profile="plain").reliability == Reliability(backoff_s=0.5, reconnects=2)  # [stt] only


def test_without_any_table_the_provider_has_the_default(installed: ProviderRegistry) -> None:
    assert "reliability" not in Config().select("stt", provider="code").options
    assert Config().stt(provider="code").reliability == Reliability()


def test_the_selection_carries_the_policy(config: Config) -> None:
    options = config.select("stt").options
    assert options["reliability"] == Reliability(retries=5, dead_peer_timeout_s=5, backoff_s=0.5, reconnects=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[stt]\nreliability = { retrys = 2 }\n", r"reliability in \[stt\] of .* has unknown option 'retrys'"),
        (
            "[providers.code]\nreliability = { retries = -1 }\n",
            r"reliability in \[providers.code\] of .*: retries must be a whole number >= 0, not -1",
        ),
        ("[tts.reliability]\nbackoff_s = 'slow'\n", r"reliability in \[tts\] of .*: backoff_s must be a number"),
        ("[stt]\nreliability = 3\n", r"reliability in \[stt\] of .* must be a table of options, not 3"),
        (
            "[profiles.p]\nreliability = { jitter = true }\nstt = {}\n",
            r"reliability in \[profiles.p\] of .* has unknown option 'jitter'",
        ),
        (
            "[profiles.p]\nstt = { reliability = { retries = 1.5 } }\n",
            r"reliability in \[profiles.p.stt\] of .*: retries must be a whole number",
        ),
        ("[profiles.p]\nreliability = { retries = 1 }\n", r"\[profiles.p\] of .* is empty"),
    ],
)
def test_bad_tables_name_the_option_the_place_and_the_accepted(
    tmp_path: Path, installed: ProviderRegistry, text: str, message: str
) -> None:
    path = tmp_path / "speechbridge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    if "unknown option" in message:
        assert "allowed: retries, reconnects, backoff_s, max_backoff_s, dead_peer_timeout_s" in str(caught.value)


def test_bad_arguments_are_named_too(config: Config) -> None:
    with pytest.raises(ConfigError, match="reliability in the arguments has unknown option 'tries'"):
        config.stt(reliability={"tries": 1})


def test_the_key_is_listed_among_the_provider_options(tmp_path: Path, installed: ProviderRegistry) -> None:
    path = tmp_path / "speechbridge.toml"
    path.write_text("[providers.code]\nretries = 2\n")
    with pytest.raises(ConfigError, match=r"unknown option 'retries'.*reliability"):
        load_config(path).select("stt", provider="code")


def test_config_check_shows_the_policy(layered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "check", "--config", str(layered)]) == 0
    out = capsys.readouterr().out
    assert "stt: code (model='shared', reliability=Reliability(retries=5, reconnects=2, backoff_s=0.5," in out
    assert out.rstrip().endswith("ok")
