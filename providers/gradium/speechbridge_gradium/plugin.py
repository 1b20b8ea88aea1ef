"""Entry point of the Gradium backend: the ``gradium`` STT and TTS providers, and the ``gradium`` front.

The front (a wire-compatible Gradium server) needs the ``server`` extra (starlette, uvicorn); it is imported only
when a front is made, so the providers load without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speechbridge.errors import MissingDependency
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

from .stt import GradiumSTT
from .tts import GradiumTTS

if TYPE_CHECKING:
    from speechbridge.serving import ASGIApp

__all__ = ["gradium_front", "speechbridge_register_fronts", "speechbridge_register_providers"]


def gradium_front(stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, /, **options: Any) -> ASGIApp:
    """The Gradium API served by ``stt`` and ``tts``: :func:`speechbridge_gradium.server.make_app`."""
    try:
        from .server import make_app
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] in ("starlette", "uvicorn"):
            raise MissingDependency(error.name.split(".")[0], "server") from None
        raise
    return make_app(stt, tts, **options)


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(GradiumSTT)
    registry.add_tts(GradiumTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("gradium", gradium_front)
