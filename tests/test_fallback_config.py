"""Failover chains from speechbridge.toml: ``fallback = [...]`` in [stt] / [tts] or a profile, and the CLI over one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from speechbridge import cli, plugins
from speechbridge.audio import AudioFormat
from speechbridge.config import Config, load_config
from speechbridge.errors import ConfigError, TransportError
from speechbridge.events import Transcript
from speechbridge.fallback import FallbackSTT, FallbackTTS
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry, build_registry, plugin_manager
from speechbridge.settings import one_of
from speechbridge.stt import STTCapabilities, STTProvider, STTStream

CHAIN = """
[stt]
fallback = ["down", "code", "us"]
language = "fr"
no_output_timeout_s = 5
reliability = { replay_limit_s = 30 }

[tts]
fallback = ["code"]
probe_interval_s = 2

[providers.code]
model = "shared"

[profiles.us]
stt = { provider = "keyed", region = "us" }

[profiles.safe]
stt = { fallback = ["code", "down"], language = "en" }
"""


@attrs.frozen
class DownSettings:
    language: str = attrs.field(default="en", validator=one_of("en", "fr"))


class DownStream(STTStream):
    async def _open(self) -> None:
        raise TransportError("connection refused", provider="down")

    async def _send_frame(self, frame: bytes) -> None:
        raise AssertionError("the stream never opens")

    async def _send_flush(self, flush_id: int) -> None:
        raise AssertionError("the stream never opens")

    async def _send_end(self) -> None:
        raise AssertionError("the stream never opens")


class DownSTT(STTProvider[DownSettings]):
    """A provider whose service is down: every request is refused."""

    name: ClassVar[str] = "down"
    Settings: ClassVar[type[Any]] = DownSettings
    capabilities: ClassVar[STTCapabilities] = STTCapabilities()

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: DownSettings) -> Transcript:
        raise TransportError("connection refused", provider=self.name)

    def _stream(self, format: AudioFormat, settings: DownSettings) -> STTStream:
        return DownStream(self.name, format=format, wire_format=format)


@pytest.fixture
def with_down(installed: ProviderRegistry, monkeypatch: pytest.MonkeyPatch) -> ProviderRegistry:
    """The in-test registry plus the "down" STT, as the process-wide registry."""
    code_stt, code_tts, keyed = installed.stt("code"), installed.tts("code"), installed.stt("keyed")

    class Plugin:
        @hookimpl
        def speechbridge_register_providers(self, registry: ProviderRegistry) -> None:
            registry.add_stt(code_stt)
            registry.add_tts(code_tts)
            registry.add_stt(keyed)
            registry.add_stt(DownSTT)

    registry = build_registry(plugin_manager(load_entrypoints=False, plugins=[Plugin()]))
    monkeypatch.setattr(plugins, "_registry", registry)
    monkeypatch.setenv("KEYED_API_KEY", "test-key")
    return registry


def config_of(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "speechbridge.toml"
    path.write_text(text)
    return load_config(path)


async def test_a_chain_is_made_of_providers_and_profiles_with_their_options(
    with_down: ProviderRegistry, tmp_path: Path, make_wav: Callable[..., Path]
) -> None:
    config = config_of(tmp_path, CHAIN)
    stt = config.stt()
    assert isinstance(stt, FallbackSTT)
    assert [member.name for member in stt.providers] == ["down", "code", "keyed"]
    down, code, keyed = stt.providers
    assert down.settings.language == code.settings.language == keyed.settings.language == "fr"
    assert code.settings.model == "shared" and keyed.settings.region == "us"
    assert stt.settings.no_output_timeout_s == 5 and stt.reliability.replay_limit_s == 30
    assert code.reliability.replay_limit_s == 30, "the section's reliability reaches its members too"
    assert not stt.capabilities.streaming, "keyed does not stream, so the chain does not"
    result = await stt.transcribe(make_wav("hello world"))
    assert result.text == "hello world" and stt.active is code
    await stt.aclose()
    tts = config.tts()
    assert isinstance(tts, FallbackTTS) and tts.settings.probe_interval_s == 2
    await tts.aclose()


async def test_a_profile_may_be_a_chain_and_arguments_reach_every_member(
    with_down: ProviderRegistry, tmp_path: Path
) -> None:
    config = config_of(tmp_path, CHAIN)
    stt = config.stt(profile="safe")
    assert isinstance(stt, FallbackSTT) and [member.name for member in stt.providers] == ["code", "down"]
    assert [member.settings.language for member in stt.providers] == ["en", "en"], "the profile outranks [stt]"
    stt = config.stt(profile="safe", no_output_timeout_s=2, language="fr")
    assert isinstance(stt, FallbackSTT) and stt.settings.no_output_timeout_s == 2
    assert [member.settings.language for member in stt.providers] == ["fr", "fr"]
    with pytest.raises(ConfigError, match="api_key"):
        config.stt(api_key="secret")


def test_the_environment_and_arguments_still_pick_one_provider(
    with_down: ProviderRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(tmp_path, CHAIN)
    assert config.stt(provider="code").name == "code"
    monkeypatch.setenv("SPEECHBRIDGE_STT", "code")
    assert config.stt().name == "code"
    assert isinstance(config.stt(profile="safe"), FallbackSTT), "a profile outranks the environment"
    monkeypatch.setenv("SPEECHBRIDGE_STT", "fallback")
    assert isinstance(config.stt(), FallbackSTT)
    plain = config_of(tmp_path, '[stt]\nprovider = "code"\n')
    with pytest.raises(ConfigError, match=r"needs a chain: fallback = \[\.\.\.\] in \[stt\]"):
        plain.stt()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[stt]\nfallback = ["code", "nope"]', "unknown stt provider or profile 'nope' in \\[stt\\]"),
        ('[stt]\nprovider = "code"\nfallback = ["code"]', "both provider = 'code' and fallback"),
        ("[stt]\nfallback = []", "must be a list of provider or profile names"),
        ('[stt]\nfallback = "code"', "must be a list of provider or profile names"),
        ('[stt]\nprovider = "code"\nno_output_timeout_s = 3', "no_output_timeout_s .* belongs to a fallback chain"),
        ('[stt]\nfallback = ["code"]\nno_output_timeout_s = -1', "no_output_timeout_s"),
        ('[stt]\nfallback = ["code"]\nms_per_word = 3', "unknown option 'ms_per_word'"),
        ('[stt]\nfallback = ["code", "down"]\nlowercase = true', "down: unknown option 'lowercase' in \\[stt\\]"),
        ('[stt]\nfallback = ["p"]\n[profiles.p]\nstt = { fallback = ["code"] }', "profile 'p' .* must set a provider"),
    ],
)
def test_mistakes_in_a_chain_are_config_errors(
    with_down: ProviderRegistry, tmp_path: Path, toml: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        config_of(tmp_path, toml).stt()
    if "unknown stt provider" in message:
        assert caught.value.allowed == ("code", "down", "keyed")


def test_check_names_the_members_without_a_key(
    with_down: ProviderRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYED_API_KEY")
    problems = config_of(tmp_path, CHAIN).check()
    assert "stt: keyed needs an API key: set KEYED_API_KEY" in problems
    monkeypatch.setenv("KEYED_API_KEY", "test-key")
    assert config_of(tmp_path, CHAIN).check() == []


def test_the_cli_transcribes_through_a_chain_unchanged(
    with_down: ProviderRegistry, tmp_path: Path, make_wav: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "chain.toml"
    config.write_text('[stt]\nfallback = ["down", "code"]\n')
    wav = str(make_wav("hello world"))
    assert cli.main(["--config", str(config), "transcribe", wav]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert cli.main(["--config", str(config), "transcribe", wav, "--stream", "--fast"]) == 0
    assert capsys.readouterr().out == "hello world\n"
