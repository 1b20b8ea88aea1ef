"""The local backend's entry point: registers :class:`LocalSTT` and :class:`LocalTTS` as ``local``."""

from __future__ import annotations

from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry

from .stt import LocalSTT
from .tts import LocalTTS

__all__ = ["speechbridge_register_providers"]


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(LocalSTT)
    registry.add_tts(LocalTTS)
