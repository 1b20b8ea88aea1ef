"""The plugin manager: loads every backend from the ``speechbridge`` entry-point group; looks providers, fronts and
migrations up.

``SPEECHBRIDGE_DISABLE_PLUGINS=a,b`` blocks the named plugins (entry-point names);
``SPEECHBRIDGE_TRACE_PLUGINS=1`` logs every hook call.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import pluggy

from . import hookspecs
from .errors import ConfigError
from .stt import STTCapabilities, STTProvider
from .tts import TTSCapabilities, TTSProvider

if TYPE_CHECKING:
    from .migrate import MigrationFunction
    from .serving import ASGIApp

__all__ = [
    "FrontFactory",
    "FrontInfo",
    "MigrationInfo",
    "ProviderInfo",
    "ProviderRegistry",
    "build_registry",
    "get_registry",
    "plugin_manager",
]

log = logging.getLogger("speechbridge.plugins")
GROUP = "speechbridge"
HOOKS = ("speechbridge_register_providers", "speechbridge_register_fronts", "speechbridge_register_migrations")
FRONT_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@attrs.frozen
class ProviderInfo:
    """One registered provider class and where it came from."""

    name: str
    kind: str  # "stt" or "tts"
    cls: type[Any]
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def capabilities(self) -> STTCapabilities | TTSCapabilities:
        return self.cls.capabilities  # type: ignore[no-any-return]


class FrontFactory(Protocol):
    """Makes a front: an ASGI app speaking a vendor's API, delegating to ``stt`` and ``tts`` (either may be None)."""

    def __call__(self, stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, /, **options: Any) -> ASGIApp: ...


@attrs.frozen
class FrontInfo:
    """One registered front and where it came from."""

    name: str
    factory: FrontFactory
    plugin: str
    distribution: str | None
    version: str | None


@attrs.frozen
class MigrationInfo:
    """One registered migration (a vendor's options into speechbridge config) and where it came from."""

    vendor: str
    function: MigrationFunction
    plugin: str
    distribution: str | None
    version: str | None


class ProviderRegistry:
    """The provider classes, fronts and migrations the plugins added, by kind and name."""

    def __init__(self) -> None:
        self._providers: dict[tuple[str, str], ProviderInfo] = {}
        self._fronts: dict[str, FrontInfo] = {}
        self._migrations: dict[str, MigrationInfo] = {}
        self._origin: tuple[str, str | None, str | None] = ("?", None, None)

    def add_stt(self, cls: type[STTProvider[Any]]) -> None:
        """Register an STT provider class under ``cls.name``."""
        self._add("stt", cls, STTProvider)

    def add_tts(self, cls: type[TTSProvider[Any]]) -> None:
        """Register a TTS provider class under ``cls.name``."""
        self._add("tts", cls, TTSProvider)

    def _add(self, kind: str, cls: type[Any], base: type[Any]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"add_{kind} takes a {base.__name__} subclass, not {cls!r}")
        name = cls.name
        existing = self._providers.get((kind, name))
        if existing is not None and existing.cls is not cls:
            raise ConfigError(
                f"two plugins register the {kind} provider {name!r}: {existing.plugin} and {self._origin[0]}"
            )
        plugin, distribution, version = self._origin
        self._providers[(kind, name)] = ProviderInfo(name, kind, cls, plugin, distribution, version)

    def add_front(self, name: str, factory: FrontFactory) -> None:
        """Register a front: ``factory(stt, tts, **options)`` returns the ASGI app serving vendor ``name``'s API."""
        if not isinstance(name, str):
            raise TypeError(f"add_front takes the front's name as a string, not {name!r}")
        if not FRONT_NAME.fullmatch(name):
            raise ValueError(f"a front's name is lower-case letters, digits, - and _ (e.g. 'gradium'), not {name!r}")
        if not callable(factory):
            raise TypeError(f"add_front takes a factory (stt, tts, **options) -> ASGI app, not {factory!r}")
        existing = self._fronts.get(name)
        if existing is not None and existing.factory is not factory:
            raise ConfigError(f"two plugins register the front {name!r}: {existing.plugin} and {self._origin[0]}")
        self._fronts[name] = FrontInfo(name, factory, *self._origin)

    def front(self, name: str) -> FrontFactory:
        """The factory of the front called ``name``."""
        info = self._fronts.get(name)
        if info is None:
            raise ConfigError(f"unknown front {name!r}", allowed=self.names("front"))
        return info.factory

    def fronts(self) -> list[FrontInfo]:
        """Every registered front, sorted by name."""
        return [self._fronts[name] for name in sorted(self._fronts)]

    def add_migration(self, vendor: str, function: MigrationFunction) -> None:
        """Register ``function(options) -> Migration``: ``vendor``'s own options into speechbridge config."""
        if not isinstance(vendor, str) or not FRONT_NAME.fullmatch(vendor):
            raise ValueError(
                f"a migration's vendor is lower-case letters, digits, - and _ (e.g. 'deepgram'), not {vendor!r}"
            )
        if not callable(function):
            raise TypeError(f"add_migration takes a function (options) -> Migration, not {function!r}")
        existing = self._migrations.get(vendor)
        if existing is not None and existing.function is not function:
            raise ConfigError(f"two plugins register the migration {vendor!r}: {existing.plugin} and {self._origin[0]}")
        self._migrations[vendor] = MigrationInfo(vendor, function, *self._origin)

    def migration(self, vendor: str) -> MigrationFunction:
        """The migration of ``vendor``'s options."""
        info = self._migrations.get(vendor)
        if info is None:
            raise ConfigError(f"no migration from {vendor!r}", allowed=self.names("migration"))
        return info.function

    def migrations(self) -> list[MigrationInfo]:
        """Every registered migration, sorted by vendor."""
        return [self._migrations[vendor] for vendor in sorted(self._migrations)]

    def stt(self, name: str) -> type[STTProvider[Any]]:
        """The STT provider class called ``name``."""
        return self._get("stt", name).cls

    def tts(self, name: str) -> type[TTSProvider[Any]]:
        """The TTS provider class called ``name``."""
        return self._get("tts", name).cls

    def _get(self, kind: str, name: str) -> ProviderInfo:
        info = self._providers.get((kind, name))
        if info is None:
            raise ConfigError(f"unknown {kind} provider {name!r}", allowed=self.names(kind))
        return info

    def names(self, kind: str) -> list[str]:
        """Sorted names of the providers of ``kind`` ("stt" or "tts"), of the fronts ("front") or migrations
        ("migration")."""
        if kind == "front":
            return sorted(self._fronts)
        if kind == "migration":
            return sorted(self._migrations)
        return sorted(name for k, name in self._providers if k == kind)

    def __iter__(self) -> Any:
        """The registered providers (not the fronts), sorted by name and kind."""
        return iter(sorted(self._providers.values(), key=lambda info: (info.name, info.kind)))


def plugin_manager(*, load_entrypoints: bool = True, plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """A plugin manager with the hook specs, the given ``plugins`` and (by default) every installed backend."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (n.strip() for n in os.environ.get("SPEECHBRIDGE_DISABLE_PLUGINS", "").split(","))):
        pm.set_blocked(name)
    for plugin in plugins:
        pm.register(plugin)
    if load_entrypoints:
        _load_entrypoints(pm)
    pm.check_pending()
    if os.environ.get("SPEECHBRIDGE_TRACE_PLUGINS"):
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    """Load every installed backend; one that fails to import is named in a :class:`ConfigError`."""
    try:
        pm.load_setuptools_entrypoints(GROUP)
    except Exception as exc:
        failing = next(
            (
                ep
                for ep in importlib.metadata.entry_points(group=GROUP)
                if pm.get_plugin(ep.name) is None and not pm.is_blocked(ep.name)
            ),
            None,
        )
        name = failing.name if failing is not None else "?"
        raise ConfigError(
            f"the speechbridge plugin {name!r} failed to load: {exc!r}; "
            f"fix or uninstall it, or skip it with SPEECHBRIDGE_DISABLE_PLUGINS={name}"
        ) from exc


def build_registry(pm: pluggy.PluginManager) -> ProviderRegistry:
    """Ask each plugin in turn for its providers, fronts and migrations, recording which distribution gave which."""
    registry = ProviderRegistry()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    plugins = [(name, plugin) for name, plugin in pm.list_name_plugin() if plugin is not None]
    for name, plugin in plugins:
        others = [other for _, other in plugins if other is not plugin]
        dist = dists.get(id(plugin))
        registry._origin = (
            name,
            dist.metadata["name"] if dist is not None else None,
            dist.version if dist is not None else None,
        )
        for hook in HOOKS:
            pm.subset_hook_caller(hook, others)(registry=registry)
    return registry


_registry: ProviderRegistry | None = None


def get_registry(*, reload: bool = False) -> ProviderRegistry:
    """The registry of every installed backend, built once per process."""
    global _registry
    if _registry is None or reload:
        _registry = build_registry(plugin_manager())
    return _registry
