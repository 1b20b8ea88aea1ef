"""Entry point of the ElevenLabs backend: the ``elevenlabs`` STT and TTS providers, the ``elevenlabs`` front and the
``elevenlabs`` migration (ElevenLabs options into speechbridge config).

The front (a wire-compatible ElevenLabs server) needs the ``server`` extra; it is imported only when a front is made,
so the providers load without it.
"""

from __future__ import annotations

from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.serving import lazy_front

from .migrate import migrate_elevenlabs
from .stt import ElevenLabsSTT
from .tts import ElevenLabsTTS

__all__ = [
    "speechbridge_register_fronts",
    "speechbridge_register_migrations",
    "speechbridge_register_providers",
]


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(ElevenLabsSTT)
    registry.add_tts(ElevenLabsTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("elevenlabs", lazy_front("speechbridge_elevenlabs.server"))


@hookimpl
def speechbridge_register_migrations(registry: ProviderRegistry) -> None:
    registry.add_migration("elevenlabs", migrate_elevenlabs)
