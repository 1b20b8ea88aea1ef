"""Backends are plugins: a third-party distribution is found through its entry point, with no change to the core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from speechbridge import cli, hookspecs, plugins
from speechbridge.audio import PCMAudio, encode
from speechbridge.config import load_config
from speechbridge.errors import ConfigError
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry, build_registry, plugin_manager
from speechbridge.sync import speak, transcribe_file

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "speechbridge_spec"))

ACME_PLUGIN = '''
"""Acme's speech backend: it hears how long the audio is, and speaks a beep per word; its front transcribes."""

from __future__ import annotations

import attrs

from speechbridge.audio import PCMAudio, decode, encode
from speechbridge.events import Transcript
from speechbridge.hookspecs import hookimpl
from speechbridge.migrate import Migration, Unmapped
from speechbridge.stt import STTCapabilities, STTProvider
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, Voice


@attrs.frozen
class AcmeSettings:
    language: str = "en"
    beep_s: float = 0.25


class AcmeSTT(STTProvider[AcmeSettings]):
    name = "acme"
    Settings = AcmeSettings
    capabilities = STTCapabilities(streaming=False)

    async def _transcribe(self, audio, format, settings):
        pcm = decode(audio, format)
        beeps = round(pcm.duration_s / settings.beep_s)
        return Transcript(" ".join(["beep"] * beeps), True, 0.0, pcm.duration_s, language=settings.language)

    def _stream(self, format, settings):
        raise NotImplementedError


class AcmeTTS(TTSProvider[AcmeSettings]):
    name = "acme"
    Settings = AcmeSettings
    capabilities = TTSCapabilities(streaming=False)
    default_format = __import__("speechbridge.audio").audio.AudioFormat("wav")

    async def voices(self):
        return [Voice("beep", "Beep")]

    async def _synthesize(self, text, format, settings):
        samples = round(16000 * settings.beep_s) * len(text.split())
        audio = PCMAudio(b"\\x10\\x00" * samples, 16000)
        return Synthesis(encode(audio, format), format, duration_s=audio.duration_s)

    def _stream(self, format, settings):
        raise NotImplementedError


def make_acme_app(stt, tts, /, **options):
    """Acme's API: POST /transcribe with a WAV body answers the text."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        text = (await stt.transcribe(body)).text if stt is not None else "no stt"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": f"{text} ({sorted(options)})".encode()})

    return app


@hookimpl
def speechbridge_register_providers(registry):
    registry.add_stt(AcmeSTT)
    registry.add_tts(AcmeTTS)


@hookimpl
def speechbridge_register_fronts(registry):
    registry.add_front("acme", make_acme_app)


def migrate_acme(options):
    """Acme's options: ``lang`` is the language; ``echo`` has no equivalent."""
    unmapped = tuple(Unmapped(key, value, "acme-only") for key, value in options.items() if key != "lang")
    return Migration("acme", {"stt": {"provider": "acme", "language": options.get("lang", "en")}}, unmapped=unmapped)


@hookimpl
def speechbridge_register_migrations(registry):
    registry.add_migration("acme", migrate_acme)
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install the "acme-speech" distribution (a package plus its dist-info) on sys.path for this test."""
    site = tmp_path / "site"
    (site / "acme_speech").mkdir(parents=True)
    (site / "acme_speech" / "__init__.py").write_text('"""Acme speech."""\n')
    (site / "acme_speech" / "plugin.py").write_text(ACME_PLUGIN)
    info = site / "acme_speech-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-speech\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[speechbridge]\nacme = acme_speech.plugin\n")
    for name in ("SPEECHBRIDGE_CONFIG", "SPEECHBRIDGE_STT", "SPEECHBRIDGE_TTS", "SPEECHBRIDGE_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(site)  # also invalidates the import caches
    monkeypatch.setattr(plugins, "_registry", None)
    monkeypatch.chdir(tmp_path)
    yield site
    for module in [name for name in sys.modules if name == "acme_speech" or name.startswith("acme_speech.")]:
        del sys.modules[module]


def test_entry_point_is_loaded(acme: Path):
    pm = plugin_manager()
    plugin = pm.get_plugin("acme")
    assert plugin is not None
    assert plugin.__name__ == "acme_speech.plugin"
    assert Path(plugin.__file__).is_relative_to(acme)


def test_a_plugin_that_fails_to_import_is_named(acme: Path):
    (acme / "acme_speech" / "plugin.py").write_text("import acme_engine_that_is_not_installed\n")
    with pytest.raises(ConfigError, match=r"plugin 'acme' failed to load: ModuleNotFoundError.*DISABLE_PLUGINS=acme"):
        plugin_manager()


def test_registry_records_distribution_and_version(acme: Path):
    registry = build_registry(plugin_manager())
    infos = {(info.name, info.kind): info for info in registry}
    for kind in ("stt", "tts"):
        info = infos[("acme", kind)]
        assert info.distribution in ("acme-speech", "acme_speech")
        assert info.version == "1.2.3"
        assert info.plugin == "acme"
    assert registry.stt("acme").__module__ == "acme_speech.plugin"


def test_selectable_from_config_with_no_change_to_the_core(acme: Path, tmp_path: Path):
    (tmp_path / "speechbridge.toml").write_text('[stt]\nprovider = "acme"\n[tts]\nprovider = "acme"\nbeep_s = 0.5\n')
    synthesis = speak("one two three", tmp_path / "beeps.wav")
    assert synthesis.duration_s == pytest.approx(1.5)
    assert transcribe_file(tmp_path / "beeps.wav").text == "beep beep beep beep beep beep"
    assert transcribe_file(tmp_path / "beeps.wav", beep_s=0.5).text == "beep beep beep"
    assert type(load_config().stt()).__module__ == "acme_speech.plugin"


def test_cli_lists_it(acme: Path, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["providers"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    acme_rows = [row for row in rows if row[0] == "acme"]
    assert [row[:4] for row in acme_rows] == [
        ["acme", "front", "acme-speech", "1.2.3"],
        ["acme", "stt", "acme-speech", "1.2.3"],
        ["acme", "tts", "acme-speech", "1.2.3"],
    ]
    assert acme_rows[0][4:] == ["-"]


def test_cli_in_a_fresh_process_lists_it(acme: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(acme), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "speechbridge.cli", "providers", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {(row["name"], row["kind"]): row for row in json.loads(result.stdout)}
    assert rows[("acme", "tts")]["version"] == "1.2.3"
    assert rows[("acme", "stt")]["capabilities"]["streaming"] is False
    assert rows[("acme", "front")]["distribution"] in ("acme-speech", "acme_speech")
    assert rows[("acme", "front")]["capabilities"] is None


def test_disabled_plugin_is_blocked(acme: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("SPEECHBRIDGE_DISABLE_PLUGINS", "other, acme")
    pm = plugin_manager()
    assert pm.is_blocked("acme")
    assert "acme_speech.plugin" not in sys.modules
    registry = build_registry(pm)
    assert "acme" not in registry.names("stt")
    (acme.parent / "speechbridge.toml").write_text('[stt]\nprovider = "acme"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(registry=registry).stt()
    assert "unknown stt provider 'acme'" in str(caught.value)
    assert caught.value.allowed == tuple(registry.names("stt"))
    wav = acme.parent / "any.wav"
    wav.write_bytes(encode(PCMAudio(b"\0\0" * 1600, 16000), "wav"))
    assert cli.main(["transcribe", str(wav), "--provider", "acme"]) == 2
    assert "unknown stt provider 'acme', given as an argument (allowed: " in capsys.readouterr().err


def test_unknown_provider_error_names_the_installed_ones(acme: Path):
    registry = build_registry(plugin_manager())
    with pytest.raises(ConfigError, match=r"unknown tts provider 'acne'.*\(allowed: .*acme") as caught:
        load_config(registry=registry).tts(provider="acne")
    assert "acme" in caught.value.allowed


class _Plugin:
    def __init__(self, *classes: type) -> None:
        self.classes = classes

    @hookimpl
    def speechbridge_register_providers(self, registry: ProviderRegistry) -> None:
        for cls in self.classes:
            registry.add_stt(cls)


def test_hook_speechbridge_register_providers(acme: Path):
    acme_stt = build_registry(plugin_manager()).stt("acme")
    twin = type("TwinSTT", (acme_stt,), {})
    other = type("OtherSTT", (acme_stt,), {"name": "other"})

    registry = build_registry(plugin_manager(load_entrypoints=False, plugins=[_Plugin(acme_stt, other)]))
    assert registry.names("stt") == ["acme", "other"]
    assert registry.names("tts") == []

    with pytest.raises(ConfigError, match=r"two plugins register the stt provider 'acme'"):
        build_registry(plugin_manager(load_entrypoints=False, plugins=[_Plugin(acme_stt), _Plugin(twin)]))
    with pytest.raises(TypeError, match=r"add_stt takes a STTProvider subclass"):
        build_registry(plugin_manager(load_entrypoints=False, plugins=[_Plugin(str)]))


class _FrontPlugin:
    def __init__(self, name: object, factory: object) -> None:
        self.name, self.factory = name, factory

    @hookimpl
    def speechbridge_register_fronts(self, registry: ProviderRegistry) -> None:
        registry.add_front(self.name, self.factory)  # type: ignore[arg-type]


async def test_hook_speechbridge_register_fronts(acme: Path):
    registry = build_registry(plugin_manager())
    front = next(front for front in registry.fronts() if front.name == "acme")
    assert (front.plugin, front.version) == ("acme", "1.2.3")
    assert front.distribution in ("acme-speech", "acme_speech")
    assert "acme" in registry.names("front")

    app = registry.front("acme")(registry.stt("acme")(), None, api_keys=None)
    wav = encode(PCMAudio(b"\x10\x00" * 8000, 16000), "wav")  # 0.5 s: two beeps
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://acme") as client:
        response = await client.post("/transcribe", content=wav)
    assert response.text == "beep beep (['api_keys'])"

    with pytest.raises(ConfigError, match=r"unknown front 'acne'") as caught:
        registry.front("acne")
    assert "acme" in caught.value.allowed

    factory = registry.front("acme")
    twice = build_registry(
        plugin_manager(load_entrypoints=False, plugins=[_FrontPlugin("x", factory), _FrontPlugin("x", factory)])
    )
    assert twice.names("front") == ["x"]
    assert twice.names("stt") == []
    with pytest.raises(ConfigError, match=r"two plugins register the front 'x'"):
        build_registry(
            plugin_manager(load_entrypoints=False, plugins=[_FrontPlugin("x", factory), _FrontPlugin("x", len)])
        )
    for name, wrong, error in [
        ("x", "not callable", TypeError),
        (7, factory, TypeError),
        ("Ac me", factory, ValueError),
    ]:
        with pytest.raises(error, match=r"add_front|front's name"):
            build_registry(plugin_manager(load_entrypoints=False, plugins=[_FrontPlugin(name, wrong)]))


class _MigrationPlugin:
    def __init__(self, vendor: object, function: object) -> None:
        self.vendor, self.function = vendor, function

    @hookimpl
    def speechbridge_register_migrations(self, registry: ProviderRegistry) -> None:
        registry.add_migration(self.vendor, self.function)  # type: ignore[arg-type]


def test_hook_speechbridge_register_migrations(acme: Path):
    registry = build_registry(plugin_manager())
    info = next(info for info in registry.migrations() if info.vendor == "acme")
    assert (info.plugin, info.version) == ("acme", "1.2.3")
    assert info.distribution in ("acme-speech", "acme_speech")
    assert "acme" in registry.names("migration")

    migration = registry.migration("acme")({"lang": "fr", "echo": True})
    assert migration.config == {"stt": {"provider": "acme", "language": "fr"}}
    assert [(each.field, each.value, each.reason) for each in migration.unmapped] == [("echo", True, "acme-only")]
    config = load_config(registry=registry)
    migrated = type(config).from_dict(tomllib.loads(migration.to_toml()), registry=registry)
    assert migrated.stt().settings.language == "fr"

    with pytest.raises(ConfigError, match=r"no migration from 'acne'") as caught:
        registry.migration("acne")
    assert "acme" in caught.value.allowed

    function = registry.migration("acme")
    twice = build_registry(
        plugin_manager(
            load_entrypoints=False, plugins=[_MigrationPlugin("x", function), _MigrationPlugin("x", function)]
        )
    )
    assert twice.names("migration") == ["x"]
    assert twice.names("front") == []
    with pytest.raises(ConfigError, match=r"two plugins register the migration 'x'"):
        build_registry(
            plugin_manager(
                load_entrypoints=False, plugins=[_MigrationPlugin("x", function), _MigrationPlugin("x", len)]
            )
        )
    for vendor, wrong, error in [
        ("x", "not callable", TypeError),
        (7, function, ValueError),
        ("Ac me", function, ValueError),
    ]:
        with pytest.raises(error, match=r"add_migration|migration's vendor"):
            build_registry(plugin_manager(load_entrypoints=False, plugins=[_MigrationPlugin(vendor, wrong)]))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str):
    assert f"test_hook_{hook}" in globals(), f"add test_hook_{hook} to {Path(__file__).name}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str):
    assert hook in (ROOT / "README.md").read_text(), f"document the {hook} hook in README.md"


def test_hooks_are_found():
    assert {
        "speechbridge_register_providers",
        "speechbridge_register_fronts",
        "speechbridge_register_migrations",
    } <= set(HOOKS)
