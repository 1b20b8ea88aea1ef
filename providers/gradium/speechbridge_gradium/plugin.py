"""Entry point of the Gradium backend: the ``gradium`` STT and TTS providers, and the ``gradium`` front.

The front (a wire-compatible Gradium server) needs the ``server`` extra (starlette, uvicorn); it is imported only
when a front is made, so the providers load without it.
"""

from __future__ import annotations

from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.serving import lazy_front

from .stt import GradiumSTT
from .tts import GradiumTTS

__all__ = ["speechbridge_register_fronts", "speechbridge_register_providers"]


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(GradiumSTT)
    registry.add_tts(GradiumTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("gradium", lazy_front("speechbridge_gradium.server"))
