"""Entry point of the ElevenLabs backend: the ``elevenlabs`` STT and TTS providers, and the ``elevenlabs`` front.

The front (a wire-compatible ElevenLabs server) needs the ``server`` extra; it is imported only when a front is made,
so the providers load without it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from speechbridge.errors import MissingDependency
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

from .stt import ElevenLabsSTT
from .tts import ElevenLabsTTS

if TYPE_CHECKING:
    from speechbridge.serving import ASGIApp

__all__ = ["elevenlabs_front", "speechbridge_register_fronts", "speechbridge_register_providers"]

SERVER_MODULES = ("starlette", "uvicorn")


def elevenlabs_front(stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, /, **options: Any) -> ASGIApp:
    """The ElevenLabs API served by ``stt`` and ``tts``: :func:`speechbridge_elevenlabs.server.make_app`."""
    try:
        from .server import make_app
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top in SERVER_MODULES:
            raise MissingDependency(top, "server") from None
        raise
    if importlib.util.find_spec("python_multipart") is None:  # starlette needs it to read the batch STT upload
        raise MissingDependency("python-multipart", "server")
    return make_app(stt, tts, **options)


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(ElevenLabsSTT)
    registry.add_tts(ElevenLabsTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("elevenlabs", elevenlabs_front)
