"""speechbridge.toml, environment overrides, keyword arguments and profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechbridge.config import Config, load_config
from speechbridge.errors import ConfigError, UnsupportedFeature
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry, build_registry, plugin_manager

CONFIG = """
[stt]
provider = "code"
language = "fr"

[tts]
provider = "code"

[providers.code]
model = "shared"
lowercase = true
speed = 2.0

[providers.keyed]
region = "us"

[profiles.p]
stt = { model = "profile" }

[profiles.k]
stt = { provider = "keyed" }
tts = { voice = "shout" }
"""


def write(tmp_path: Path, text: str, name: str = "speechbridge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def config(tmp_path: Path, installed: ProviderRegistry) -> Config:
    return load_config(write(tmp_path, CONFIG))


def test_no_config_at_all_means_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: ProviderRegistry):
    class LocalPlugin:
        @hookimpl
        def speechbridge_register_providers(self, registry: ProviderRegistry) -> None:
            registry.add_stt(type("LocalSTT", (registry_stt,), {"name": "local"}))
            registry.add_tts(type("LocalTTS", (registry_tts,), {"name": "local"}))

    registry_stt, registry_tts = registry.stt("code"), registry.tts("code")
    with_local = build_registry(plugin_manager(load_entrypoints=False, plugins=[LocalPlugin()]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPEECHBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("SPEECHBRIDGE_STT", raising=False)
    monkeypatch.delenv("SPEECHBRIDGE_TTS", raising=False)
    config = load_config(registry=with_local)
    assert config.path is None
    assert type(config.stt()).name == "local"
    assert type(config.tts()).name == "local"


def test_file_in_the_current_directory_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed):
    write(tmp_path, '[stt]\nprovider = "keyed"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.path == Path("speechbridge.toml")
    assert config.select("stt").provider == "keyed"


def test_explicit_path_beats_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed):
    from_env = write(tmp_path, '[stt]\nprovider = "keyed"\n', "env.toml")
    explicit = write(tmp_path, '[stt]\nprovider = "code"\n', "explicit.toml")
    monkeypatch.setenv("SPEECHBRIDGE_CONFIG", str(from_env))
    assert load_config().select("stt").provider == "keyed"
    assert load_config(explicit).select("stt").provider == "code"


def test_missing_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed):
    with pytest.raises(ConfigError, match=r"nope\.toml' does not exist$"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("SPEECHBRIDGE_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml' does not exist \(from SPEECHBRIDGE_CONFIG\)"):
        load_config()


def test_invalid_toml_names_file_and_line(tmp_path: Path, installed):
    path = write(tmp_path, '[stt]\nprovider = "code"\nlanguage = \n')
    with pytest.raises(ConfigError, match=r"speechbridge\.toml is not valid TOML: .*line 3"):
        load_config(path)


def test_options_layer_shared_then_section_then_profile_then_arguments(config: Config):
    stt = config.stt()
    assert type(stt).name == "code"
    assert (stt.settings.language, stt.settings.model, stt.settings.lowercase) == ("fr", "shared", True)
    assert config.stt(profile="p").settings.model == "profile"
    assert config.stt(profile="p", model="argument").settings.model == "argument"
    assert config.stt(language="en").settings.language == "en"


def test_provider_precedence(config: Config, monkeypatch: pytest.MonkeyPatch):
    assert type(config.stt(profile="k")).name == "keyed"
    monkeypatch.setenv("SPEECHBRIDGE_STT", "code")
    assert type(config.stt(profile="k")).name == "keyed"  # a profile asked for beats the environment
    assert type(config.stt()).name == "code"  # the environment beats [stt]
    assert type(config.stt(provider="keyed")).name == "keyed"  # arguments beat the environment
    monkeypatch.setenv("SPEECHBRIDGE_STT", "keyed")
    keyed = config.stt()
    assert type(keyed).name == "keyed"
    assert (keyed.settings.language, keyed.settings.region) == ("fr", "us")  # [stt] and [providers.keyed] apply


def test_environment_is_read_when_a_provider_is_made(config: Config, monkeypatch: pytest.MonkeyPatch):
    assert config.select("stt").provider == "code"
    monkeypatch.setenv("SPEECHBRIDGE_STT", "keyed")
    assert config.select("stt").provider == "keyed"
    assert config.select("tts").provider == "code"


def test_swapping_the_vendor_is_one_line(tmp_path: Path, installed):
    text = '[stt]\nprovider = "code"\nlanguage = "fr"\n'
    before = load_config(write(tmp_path, text, "a.toml")).stt()
    after = load_config(write(tmp_path, text.replace('"code"', '"keyed"'), "b.toml")).stt()
    assert (type(before).name, type(after).name) == ("code", "keyed")
    assert before.settings.language == after.settings.language == "fr"


def test_shared_provider_options_go_to_the_kinds_that_accept_them(config: Config):
    tts = config.tts()
    assert tts.settings.speed == 2.0  # speed is a TTS option only
    assert not hasattr(config.stt().settings, "speed")
    assert config.tts(profile="k").settings.voice == "shout"


@pytest.mark.parametrize(
    ("text", "choice", "message", "allowed"),
    [
        (
            '[stt]\nprovider = "nope"\n',
            {},
            r"unknown stt provider 'nope', set in \[stt\] of .*speechbridge.toml",
            ("code", "keyed"),
        ),
        ('[stt]\nmodle = "x"\n', {"provider": "code"}, r"code: unknown option 'modle' in \[stt\]", None),
        (
            '[profiles.k]\nstt = { provider = "keyed", beam_size = 3 }\n',
            {"profile": "k"},
            r"keyed: unknown option 'beam_size' in \[profiles\.k\.stt\]",
            ("language", "region"),
        ),
        ("[providers.code]\nbogus = 1\n", {"provider": "code"}, r"unknown option 'bogus' in \[providers\.code\]", None),
        (
            "[providers.keyed]\nspeed = 1.5\n",
            {"provider": "keyed"},
            r"unknown option 'speed' in \[providers\.keyed\]",
            ("api_key_env", "language", "region", "reliability"),
        ),
    ],
)
def test_unknown_names_list_what_is_allowed(tmp_path: Path, installed, text: str, choice, message: str, allowed):
    config = load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match=message) as caught:
        config.stt(**choice)
    assert caught.value.allowed
    assert "(allowed: " in str(caught.value)
    if allowed is not None:
        assert caught.value.allowed == allowed


def test_unknown_option_from_arguments_lists_the_settings(config: Config):
    with pytest.raises(ConfigError) as caught:
        config.stt(languag="en")
    assert caught.value.allowed == ("language", "model", "interim_results", "lowercase")
    assert "unknown option 'languag' in the arguments" in str(caught.value)


def test_bad_values_list_the_accepted_ones(config: Config):
    with pytest.raises(ConfigError, match=r"language='de' is not accepted \(allowed: en, fr\)"):
        config.stt(language="de")
    with pytest.raises(ConfigError, match=r"speed=9 is out of range"):
        config.tts(speed=9)


def test_unknown_provider_from_the_environment_says_so(config: Config, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPEECHBRIDGE_TTS", "keyed")  # keyed has no TTS
    with pytest.raises(ConfigError, match=r"unknown tts provider 'keyed', set in SPEECHBRIDGE_TTS \(allowed: code\)"):
        config.tts()


def test_unknown_profile_lists_the_profiles(config: Config):
    with pytest.raises(ConfigError, match=r"unknown profile 'q' \(allowed: k, p\)"):
        config.stt(profile="q")
    assert config.profile_names == ["k", "p"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sst]\n", r"unknown key 'sst' in the top level .*\(allowed: stt, tts, providers, profiles, pricing\)"),
        ("[profiles.a]\nvad = {}\n", r"unknown key 'vad' in \[profiles\.a\].*\(allowed: stt, tts, reliability\)"),
        ("[profiles.a]\n", r"\[profiles\.a\].* is empty"),
        ('stt = "code"\n', r"\[stt\].* must be a table, not str 'code'"),
        ("[stt]\nprovider = 3\n", r"provider in \[stt\].* must be a provider name, not 3"),
        ("[providers.code]\napi_key_env = 1\n", r"api_key_env in \[providers\.code\].* must name an environment"),
    ],
)
def test_malformed_files_are_rejected_on_load(tmp_path: Path, installed, text: str, message: str):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        '[providers.keyed]\napi_key = "sk-123"\n',
        '[stt]\nprovider = "keyed"\napi_key = "sk-123"\n',
        '[profiles.a]\nstt = { provider = "keyed", api_key = "sk-123" }\n',
    ],
)
def test_api_keys_in_the_file_are_refused(tmp_path: Path, installed, text: str):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert "come from the environment" in str(caught.value)
    assert "api_key_env" in str(caught.value)
    assert "sk-123" not in str(caught.value)


async def test_api_key_from_the_environment_reaches_the_provider(
    tmp_path: Path, installed, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KEYED_API_KEY", "sk-secret-value")
    config = load_config(write(tmp_path, '[stt]\nprovider = "keyed"\n'))
    stt = config.stt()
    transcript = await stt.transcribe(b"\0\0" * 160, format="pcm_16000")
    assert transcript.text == "eu: 320 bytes"
    for text in (repr(stt), str(stt), repr(stt._api_key), str(stt._api_key), repr(config), repr(config.select("stt"))):
        assert "sk-secret-value" not in text


async def test_api_key_env_named_in_the_file_wins(tmp_path: Path, installed, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    monkeypatch.setenv("MY_KEYED_KEY", "sk-mine")
    text = '[stt]\nprovider = "keyed"\n[providers.keyed]\napi_key_env = "MY_KEYED_KEY"\n'
    config = load_config(write(tmp_path, text))
    assert config.select("stt").api_key_env == "MY_KEYED_KEY"
    assert (await config.stt().transcribe(b"\0\0", format="pcm_16000")).text == "eu: 2 bytes"
    monkeypatch.delenv("MY_KEYED_KEY")
    with pytest.raises(ConfigError, match=r"MY_KEYED_KEY is not set"):
        config.stt()


async def test_missing_key_is_reported_when_used(tmp_path: Path, installed, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    stt = Config(registry=installed).stt(provider="keyed")
    with pytest.raises(ConfigError, match=r"no API key \(set KEYED_API_KEY\)"):
        await stt.transcribe(b"\0\0", format="pcm_16000")


def test_check_is_empty_for_a_good_config(config: Config, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KEYED_API_KEY", "sk-x")
    assert config.check() == []


def test_check_lists_every_problem(tmp_path: Path, installed, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    text = """
[stt]
provider = "code"
language = "de"
[tts]
provider = "code"
[providers.nope]
model = "x"
[profiles.a]
stt = { provider = "keyed" }
[profiles.b]
tts = { provider = "cod" }
"""
    problems = load_config(write(tmp_path, text)).check()
    assert problems == [
        "stt: code: language='de' is not accepted (allowed: en, fr)",
        "profile 'a' stt: keyed needs an API key: set KEYED_API_KEY",
        f"profile 'b' tts: unknown tts provider 'cod', set in [profiles.b.tts] of {tmp_path / 'speechbridge.toml'} "
        "(allowed: code)",
        f"providers: unknown provider 'nope' in [providers.nope] of {tmp_path / 'speechbridge.toml'} "
        "(allowed: code, keyed)",
    ]


def test_a_common_option_the_provider_lacks_is_an_unsupported_feature(registry: ProviderRegistry) -> None:
    config = Config.from_dict({"profiles": {"k": {"stt": {"provider": "keyed", "model": "x"}}}}, registry=registry)
    with pytest.raises(UnsupportedFeature, match=r"keyed has no equivalent of the option 'model' in \[profiles"):
        config.stt(profile="k")
    with pytest.raises(UnsupportedFeature, match="no equivalent of the option 'speed'"):
        registry.stt("keyed")(speed=1.5)
