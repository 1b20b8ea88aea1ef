"""The plugin hooks: the only way a backend makes itself known.

A backend is a distribution that declares an entry point in the ``speechbridge`` group, naming a module with
``@hookimpl`` functions::

    [project.entry-points.speechbridge]
    acme = "speechbridge_acme.plugin"

and in that module::

    from speechbridge.hookspecs import hookimpl

    @hookimpl
    def speechbridge_register_providers(registry):
        registry.add_stt(AcmeSTT)   # AcmeSTT.name == "acme"
        registry.add_tts(AcmeTTS)

A plugin may also add **fronts**: wire-compatible servers of a vendor's API (ASGI apps) that delegate to any
provider::

    @hookimpl
    def speechbridge_register_fronts(registry):
        registry.add_front("acme", make_acme_app)   # make_acme_app(stt, tts, **options) -> ASGI app

and **migrations**: functions turning the vendor's own options into speechbridge config
(:mod:`speechbridge.migrate`)::

    @hookimpl
    def speechbridge_register_migrations(registry):
        registry.add_migration("acme", migrate_acme)   # migrate_acme(options: dict) -> Migration
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .plugins import ProviderRegistry

__all__ = [
    "hookimpl",
    "hookspec",
    "speechbridge_register_fronts",
    "speechbridge_register_migrations",
    "speechbridge_register_providers",
]

hookspec = pluggy.HookspecMarker("speechbridge")
hookimpl = pluggy.HookimplMarker("speechbridge")


@hookspec
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    """Add provider classes with ``registry.add_stt(cls)`` and ``registry.add_tts(cls)``."""


@hookspec
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    """Add fronts (vendor-compatible ASGI servers) with ``registry.add_front(name, factory)``."""


@hookspec
def speechbridge_register_migrations(registry: ProviderRegistry) -> None:
    """Add migrations of a vendor's options into speechbridge config with ``registry.add_migration(vendor, fn)``."""
