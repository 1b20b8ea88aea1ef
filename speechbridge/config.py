"""Configuration: ``speechbridge.toml``, the environment and keyword arguments make configured providers.

The file is the one given to :func:`load_config`, else ``$SPEECHBRIDGE_CONFIG``, else ``./speechbridge.toml``; with
none at all, both providers are ``local``::

    [stt]
    provider = "gradium"                  # swapping the vendor is this one line (or SPEECHBRIDGE_STT=deepgram)
    language = "en"
    [tts]
    provider = "local"
    [providers.gradium]                   # options shared by gradium's STT and TTS; each takes the keys it accepts
    api_key_env = "GRADIUM_API_KEY"       # keys come from the environment, never from the file
    delay_in_frames = 8
    [profiles.deepgram]                   # named profiles, e.g. for A/B comparisons
    stt = { provider = "deepgram", model = "nova-3" }
    [pricing.deepgram]                    # US dollars, for cost estimates in `speechbridge compare`
    stt_per_minute = 0.0043

Which provider, highest first: keyword arguments, the profile asked for, ``SPEECHBRIDGE_STT`` / ``SPEECHBRIDGE_TTS``,
``[stt]`` / ``[tts]``, ``local``. Options, highest first: keyword arguments, the profile, ``[stt]`` / ``[tts]``,
``[providers.<name>]``. The environment is read when a provider is made.

Each of those tables (and ``[profiles.<name>]`` itself, for both kinds) may hold a ``reliability`` table of
:class:`~speechbridge.reliability.Reliability` options; the tables merge key by key in the same order, and a
``Reliability`` given as an argument replaces them all::

    [providers.gradium]
    reliability = { retries = 5, dead_peer_timeout_s = 5 }
    [stt.reliability]
    backoff_s = 0.5

A ``fallback`` list in ``[stt]`` / ``[tts]`` (or a profile's table) makes a failover chain
(:class:`~speechbridge.fallback.FallbackSTT` / ``FallbackTTS``) of providers or profiles, each made as if chosen
alone, with the table's other options; ``no_output_timeout_s`` and ``probe_interval_s`` there are the chain's own.
``SPEECHBRIDGE_STT=fallback`` (or ``provider = "fallback"``) picks the configured chain::

    [stt]
    fallback = ["gradium", "deepgram", "local"]
    no_output_timeout_s = 5
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from . import plugins
from .errors import ConfigError, SpeechBridgeError
from .fallback import FAILOVER_OPTIONS, FallbackSTT, FallbackTTS
from .plugins import ProviderRegistry
from .provider import Provider
from .reliability import Reliability
from .settings import check_option_names, settings_fields
from .stt import STTProvider
from .tts import TTSProvider

__all__ = ["Config", "Profile", "ProviderSection", "Section", "Selection", "load_config"]

FILE_NAME = "speechbridge.toml"
CONFIG_ENV = "SPEECHBRIDGE_CONFIG"
PROVIDER_ENV = {"stt": "SPEECHBRIDGE_STT", "tts": "SPEECHBRIDGE_TTS"}
DEFAULT_PROVIDER = "local"
FALLBACK = "fallback"  # the provider name that picks the configured failover chain
KINDS = ("stt", "tts")
TOP_LEVEL_KEYS = ("stt", "tts", "providers", "profiles", "pricing")
PRICE_KEYS = ("stt_per_minute", "tts_per_1k_chars")
RELIABILITY = "reliability"
KEY_IN_FILE = (
    "API keys do not belong in the config file; they come from the environment: "
    'put api_key_env = "NAME_OF_THE_VARIABLE" in [providers.<name>]'
)


@attrs.frozen
class Section:
    """A provider choice (``provider`` may be None: not chosen here) with options, and where it was written."""

    provider: str | None
    options: Mapping[str, Any]
    source: str
    fallback: tuple[str, ...] = ()  # a failover chain's providers or profiles (provider is then "fallback")
    failover: Mapping[str, Any] = attrs.field(factory=dict)  # the chain's own options


@attrs.frozen
class ProviderSection:
    """``[providers.<name>]``: options shared by that provider's STT and TTS, and the key's environment variable."""

    name: str
    options: Mapping[str, Any]
    api_key_env: str | None
    source: str


@attrs.frozen
class Profile:
    """``[profiles.<name>]``: an STT and/or TTS choice made by name."""

    name: str
    stt: Section | None = None
    tts: Section | None = None


@attrs.frozen
class Selection:
    """What a provider is made from: the class, its validated-by-name options and the key's variable."""

    kind: str
    provider: str
    cls: type[Provider[Any]]
    options: Mapping[str, Any]
    api_key_env: str | None
    api_key_env_configured: bool
    members: tuple[Selection, ...] = ()  # a failover chain's providers, in order


@attrs.frozen
class Config:
    """A loaded configuration; :meth:`stt` and :meth:`tts` make providers from it."""

    stt_section: Section = Section(None, {}, "[stt]")
    tts_section: Section = Section(None, {}, "[tts]")
    providers: Mapping[str, ProviderSection] = attrs.field(factory=dict)
    profiles: Mapping[str, Profile] = attrs.field(factory=dict)
    path: Path | None = None
    registry: ProviderRegistry | None = attrs.field(default=None, eq=False, repr=False)
    pricing: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, path: Path | None = None, registry: ProviderRegistry | None = None
    ) -> Config:
        """Read the structure of a parsed config file; provider names and options are checked when used."""
        where = f" of {path}" if path is not None else ""
        _check_keys(data, TOP_LEVEL_KEYS, f"the top level{where}")
        stt, tts = (_section(data.get(kind, {}), f"[{kind}]{where}") for kind in KINDS)
        providers_table = _table(data.get("providers", {}), f"[providers]{where}")
        profiles_table = _table(data.get("profiles", {}), f"[profiles]{where}")
        providers = {
            name: _provider_section(name, _table(table, f"[providers.{name}]{where}"), f"[providers.{name}]{where}")
            for name, table in providers_table.items()
        }
        profiles = {name: _profile(name, table, where) for name, table in profiles_table.items()}
        pricing_table = _table(data.get("pricing", {}), f"[pricing]{where}")
        pricing = {name: _prices(table, f"[pricing.{name}]{where}") for name, table in pricing_table.items()}
        return cls(stt, tts, providers, profiles, path, registry, pricing)

    @property
    def profile_names(self) -> list[str]:
        return sorted(self.profiles)

    def stt(self, profile: str | None = None, provider: str | None = None, **options: Any) -> STTProvider[Any]:
        """The configured STT provider (of ``profile`` when given); ``provider`` and ``options`` override."""
        return self._make("stt", profile, provider, options)  # type: ignore[return-value]

    def tts(self, profile: str | None = None, provider: str | None = None, **options: Any) -> TTSProvider[Any]:
        """The configured TTS provider (of ``profile`` when given); ``provider`` and ``options`` override."""
        return self._make("tts", profile, provider, options)  # type: ignore[return-value]

    def select(
        self,
        kind: str,
        profile: str | None = None,
        provider: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Selection:
        """Resolve which provider of ``kind`` ("stt" or "tts") to make, and with which options."""
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}", allowed=KINDS)
        registry = self._registry()
        base: Section = getattr(self, f"{kind}_section")
        chosen = self._profile(profile) if profile is not None else None
        layer: Section | None = getattr(chosen, kind) if chosen is not None else None
        env_name = PROVIDER_ENV[kind]
        candidates = [
            (provider, "given as an argument"),
            (layer.provider if layer else None, f"set in {layer.source}" if layer else ""),
            (os.environ.get(env_name) or None, f"set in {env_name}"),
            (base.provider, f"set in {base.source}"),
            (DEFAULT_PROVIDER, "the default"),
        ]
        name, name_source = next((value, source) for value, source in candidates if value)
        if name == FALLBACK:
            return self._select_chain(kind, profile, base, layer, options or {}, name_source)
        if name not in registry.names(kind):
            raise ConfigError(f"unknown {kind} provider {name!r}, {name_source}", allowed=registry.names(kind))
        cls = registry.stt(name) if kind == "stt" else registry.tts(name)
        shared = self.providers.get(name)
        merged: dict[str, Any] = {}
        if shared is not None:
            merged.update(_route_shared(shared, kind, registry))
        for section in (base, layer):
            if section is not None:
                merged.update(_accepted(cls, section.options, section.source))
        given = {key: value for key, value in (options or {}).items() if key != "api_key"}
        merged.update(_accepted(cls, given, "the arguments"))
        layers = [(section.options, section.source) for section in (shared, base, layer) if section is not None]
        reliability = _reliability([*layers, (given, "the arguments")])
        if reliability is not None:
            merged[RELIABILITY] = reliability
        configured_env = shared.api_key_env if shared is not None else None
        return Selection(kind, name, cls, merged, configured_env or cls.api_key_env, configured_env is not None)

    def _select_chain(
        self,
        kind: str,
        profile: str | None,
        base: Section,
        layer: Section | None,
        options: Mapping[str, Any],
        source: str,
    ) -> Selection:
        """A failover chain: each member selected as the provider or profile it names, with the options of the
        tables above it and the arguments (every member must take them); the chain's own options and reliability
        go to the chain."""
        chain = next((section for section in (layer, base) if section is not None and section.fallback), None)
        if chain is None:
            raise ConfigError(f"provider {FALLBACK!r} ({source}) needs a chain: fallback = [...] in [{kind}]")
        given = {key: value for key, value in options.items() if key not in FAILOVER_OPTIONS}
        own = {**chain.failover, **{key: options[key] for key in FAILOVER_OPTIONS if key in options}}
        registry = self._registry()
        kind_profiles = [name for name in self.profile_names if getattr(self.profiles[name], kind) is not None]
        members = []
        for member in chain.fallback:
            if member in kind_profiles:
                if getattr(self.profiles[member], kind).provider in (None, FALLBACK):
                    raise ConfigError(f"profile {member!r} in the fallback of {chain.source} must set a provider")
                members.append(self.select(kind, member, None, {**(layer.options if layer else {}), **given}))
            elif member in registry.names(kind) and member != FALLBACK:
                members.append(self.select(kind, profile, member, given))
            else:
                allowed = [*registry.names(kind), *kind_profiles]
                raise ConfigError(f"unknown {kind} provider or profile {member!r} in {chain.source}", allowed=allowed)
        sections = [(section.options, section.source) for section in (base, layer) if section is not None]
        reliability = _reliability([*sections, (given, "the arguments")])
        if reliability is not None:
            own[RELIABILITY] = reliability
        cls = FallbackSTT if kind == "stt" else FallbackTTS
        return Selection(kind, FALLBACK, cls, own, None, False, tuple(members))

    def _make(self, kind: str, profile: str | None, provider: str | None, options: dict[str, Any]) -> Provider[Any]:
        return self._build(self.select(kind, profile, provider, options), options.get("api_key"))

    def _build(self, selection: Selection, api_key: Any) -> Provider[Any]:
        if selection.members:
            if api_key is not None:
                raise ConfigError("a fallback chain takes no api_key: each provider reads its own from api_key_env")
            members: list[Any] = [self._build(member, None) for member in selection.members]
            if selection.kind == "stt":
                return FallbackSTT(members, **selection.options)
            return FallbackTTS(members, **selection.options)
        if api_key is None and selection.api_key_env:
            api_key = os.environ.get(selection.api_key_env) or None
            if api_key is None and selection.api_key_env_configured:
                raise ConfigError(
                    f"{selection.api_key_env} is not set (api_key_env of [providers.{selection.provider}])",
                    provider=selection.provider,
                )
        keyword = {"api_key": api_key} if api_key is not None else {}
        return selection.cls(**keyword, **selection.options)

    def check(self) -> list[str]:
        """Make every configured provider and profile; return what is wrong, one sentence each."""
        problems: list[str] = []
        attempts: list[tuple[str, str, str | None]] = [(kind, kind, None) for kind in KINDS]
        for name, profile in sorted(self.profiles.items()):
            attempts += [(f"profile {name!r} {kind}", kind, name) for kind in KINDS if getattr(profile, kind)]
        for label, kind, profile_name in attempts:
            try:
                selection = self.select(kind, profile_name)
                keyless = [
                    each
                    for each in selection.members or (selection,)
                    if each.api_key_env and not os.environ.get(each.api_key_env)
                ]
                for each in keyless:
                    problems.append(f"{label}: {each.provider} needs an API key: set {each.api_key_env}")
                if keyless:
                    continue
                self._make(kind, profile_name, None, {})
            except SpeechBridgeError as exc:
                problems.append(f"{label}: {exc}")
        registry = self._registry()
        known = sorted(set(registry.names("stt")) | set(registry.names("tts")))
        for name, shared in sorted(self.providers.items()):
            try:
                if name not in known:
                    raise ConfigError(f"unknown provider {name!r} in {shared.source}", allowed=known)
                for kind in KINDS:
                    if name in registry.names(kind):
                        _route_shared(shared, kind, registry)
            except ConfigError as exc:
                problems.append(f"providers: {exc}")
        return list(dict.fromkeys(problems))

    def _profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise ConfigError(f"unknown profile {name!r}", allowed=self.profile_names) from None

    def _registry(self) -> ProviderRegistry:
        return self.registry if self.registry is not None else plugins.get_registry()


def load_config(path: str | os.PathLike[str] | None = None, *, registry: ProviderRegistry | None = None) -> Config:
    """Load ``path``, else ``$SPEECHBRIDGE_CONFIG``, else ``./speechbridge.toml``; no file at all is the default."""
    explicit = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if explicit is None:
        candidate = Path(FILE_NAME)
        if not candidate.is_file():
            return Config(registry=registry)
        file = candidate
    else:
        file = Path(explicit)
        if not file.is_file():
            origin = "" if path is not None else f" (from {CONFIG_ENV})"
            raise ConfigError(f"config file {os.fspath(file)!r} does not exist{origin}")
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    return Config.from_dict(data, path=file, registry=registry)


def _accepted_names(cls: type[Provider[Any]]) -> tuple[str, ...]:
    return settings_fields(cls.Settings) + tuple(getattr(cls.Settings, "ALIASES", {}))


def _accepted(cls: type[Provider[Any]], options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``options`` (but ``reliability``) when ``cls`` accepts every name; else the error names the option, its source
    and the allowed."""
    settings = {key: value for key, value in options.items() if key != RELIABILITY}
    check_option_names(cls.Settings, settings, provider=cls.name, where=source)
    return settings


def _reliability(layers: list[tuple[Mapping[str, Any], str]]) -> Reliability | None:
    """The ``reliability`` tables of ``layers`` (lowest precedence first) merged key by key; a :class:`Reliability`
    replaces what is below it. None when no layer has one."""
    merged: dict[str, Any] | None = None
    for options, source in layers:
        table = options.get(RELIABILITY)
        if table is None:
            continue
        policy = Reliability.from_options(table, where=f"{RELIABILITY} in {source}")
        merged = attrs.asdict(policy) if isinstance(table, Reliability) else {**(merged or {}), **table}
    return Reliability(**merged) if merged is not None else None


def _check_reliability(table: Mapping[str, Any], where: str) -> None:
    if RELIABILITY in table:
        Reliability.from_options(table[RELIABILITY], where=f"{RELIABILITY} in {where}")


def _route_shared(shared: ProviderSection, kind: str, registry: ProviderRegistry) -> dict[str, Any]:
    """The keys of ``[providers.<name>]`` that ``kind``'s settings accept; a key no kind accepts is an error."""
    accepted = {
        each: set(_accepted_names(registry.stt(shared.name) if each == "stt" else registry.tts(shared.name)))
        for each in KINDS
        if shared.name in registry.names(each)
    }
    everything: set[str] = set().union(*accepted.values())
    for key in shared.options:
        if key not in everything and key != RELIABILITY:
            allowed = sorted(everything | {"api_key_env", RELIABILITY})
            raise ConfigError(f"unknown option {key!r} in {shared.source}", allowed=allowed, provider=shared.name)
    return {key: value for key, value in shared.options.items() if key in accepted.get(kind, set())}


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in {where}", allowed=allowed)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, not {type(value).__name__} {value!r}")
    if "api_key" in value:
        raise ConfigError(f"{where}: {KEY_IN_FILE}")
    return value


def _section(value: Any, where: str) -> Section:
    table = dict(_table(value, where))
    provider = table.pop("provider", None)
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise ConfigError(f"provider in {where} must be a provider name, not {provider!r}")
    chain = table.pop("fallback", None)
    failover: dict[str, Any] = {key: table.pop(key) for key in FAILOVER_OPTIONS if key in table}
    if chain is None:
        if failover:
            raise ConfigError(f"{', '.join(failover)} in {where} belongs to a fallback chain: add fallback = [...]")
        chain = []
    elif not (isinstance(chain, list) and chain and all(isinstance(name, str) and name for name in chain)):
        raise ConfigError(f"fallback in {where} must be a list of provider or profile names, not {chain!r}")
    elif provider not in (None, FALLBACK):
        raise ConfigError(f"{where} gives both provider = {provider!r} and fallback = [...]: keep one")
    else:
        provider = FALLBACK
    _check_reliability(table, where)
    return Section(provider, table, where, tuple(chain), failover)


def _provider_section(name: str, table: Mapping[str, Any], where: str) -> ProviderSection:
    options = dict(table)
    api_key_env = options.pop("api_key_env", None)
    if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
        raise ConfigError(f"api_key_env in {where} must name an environment variable, not {api_key_env!r}")
    if "provider" in options:
        raise ConfigError(f"{where} is already about {name!r}: it takes options, not 'provider'")
    _check_reliability(options, where)
    return ProviderSection(name, options, api_key_env, where)


def _profile(name: str, value: Any, where: str) -> Profile:
    table = _table(value, f"[profiles.{name}]{where}")
    _check_keys(table, (*KINDS, RELIABILITY), f"[profiles.{name}]{where}")
    if not any(kind in table for kind in KINDS):
        raise ConfigError(f"[profiles.{name}]{where} is empty: give it stt = {{...}} and/or tts = {{...}}")
    _check_reliability(table, f"[profiles.{name}]{where}")
    sections = {kind: _section(table[kind], f"[profiles.{name}.{kind}]{where}") for kind in KINDS if kind in table}
    if RELIABILITY in table:
        sections = {kind: _under(section, table[RELIABILITY]) for kind, section in sections.items()}
    return Profile(name, **sections)


def _under(section: Section, reliability: Mapping[str, Any]) -> Section:
    """``section`` with a profile's ``reliability`` table under its own (its own keys win)."""
    merged = {**reliability, **section.options.get(RELIABILITY, {})}
    return attrs.evolve(section, options={**section.options, RELIABILITY: merged})


def _prices(value: Any, where: str) -> dict[str, float]:
    """``[pricing.<provider>]``: US dollars per minute of STT audio and per 1000 TTS characters."""
    table = _table(value, where)
    _check_keys(table, PRICE_KEYS, where)
    for key, price in table.items():
        if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
            raise ConfigError(f"{key} in {where} must be a price in US dollars (a number >= 0), not {price!r}")
    return {key: float(price) for key, price in table.items()}
