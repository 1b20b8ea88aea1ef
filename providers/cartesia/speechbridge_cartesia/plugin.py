"""Entry point of the Cartesia backend: the ``cartesia`` STT and TTS providers, the ``cartesia`` front and the
``cartesia`` migration (Cartesia request bodies and STT options into speechbridge config).

The front (a wire-compatible Cartesia server) needs the ``server`` extra (starlette, uvicorn); it is imported only
when a front is made, so the providers load without it.
"""

from __future__ import annotations

from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.serving import lazy_front

from .migrate import migrate_cartesia
from .stt import CartesiaSTT
from .tts import CartesiaTTS

__all__ = [
    "speechbridge_register_fronts",
    "speechbridge_register_migrations",
    "speechbridge_register_providers",
]


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(CartesiaSTT)
    registry.add_tts(CartesiaTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("cartesia", lazy_front("speechbridge_cartesia.server"))


@hookimpl
def speechbridge_register_migrations(registry: ProviderRegistry) -> None:
    registry.add_migration("cartesia", migrate_cartesia)
