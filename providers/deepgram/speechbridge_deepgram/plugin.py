"""Entry point of the Deepgram backend: the ``deepgram`` STT and TTS providers, the ``deepgram`` front and the
``deepgram`` migration (Deepgram options into speechbridge config).

The front (a wire-compatible Deepgram server) needs the ``server`` extra (starlette, uvicorn); it is imported only
when a front is made, so the providers load without it.
"""

from __future__ import annotations

from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.serving import lazy_front

from .migrate import migrate_deepgram
from .stt import DeepgramSTT
from .tts import DeepgramTTS

__all__ = [
    "speechbridge_register_fronts",
    "speechbridge_register_migrations",
    "speechbridge_register_providers",
]


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(DeepgramSTT)
    registry.add_tts(DeepgramTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("deepgram", lazy_front("speechbridge_deepgram.server"))


@hookimpl
def speechbridge_register_migrations(registry: ProviderRegistry) -> None:
    registry.add_migration("deepgram", migrate_deepgram)
