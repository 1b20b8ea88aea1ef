"""Entry point of the Deepgram backend: the ``deepgram`` STT and TTS providers, the ``deepgram`` front and the
``deepgram`` migration (Deepgram options into speechbridge config).

The front (a wire-compatible Deepgram server) needs the ``server`` extra (starlette, uvicorn); it is imported only
when a front is made, so the providers load without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speechbridge.errors import MissingDependency
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

from .migrate import migrate_deepgram
from .stt import DeepgramSTT
from .tts import DeepgramTTS

if TYPE_CHECKING:
    from speechbridge.serving import ASGIApp

__all__ = [
    "deepgram_front",
    "speechbridge_register_fronts",
    "speechbridge_register_migrations",
    "speechbridge_register_providers",
]


def deepgram_front(stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, /, **options: Any) -> ASGIApp:
    """The Deepgram API served by ``stt`` and ``tts``: :func:`speechbridge_deepgram.server.make_app`."""
    try:
        from .server import make_app
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] in ("starlette", "uvicorn"):
            raise MissingDependency(error.name.split(".")[0], "server") from None
        raise
    return make_app(stt, tts, **options)


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(DeepgramSTT)
    registry.add_tts(DeepgramTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("deepgram", deepgram_front)


@hookimpl
def speechbridge_register_migrations(registry: ProviderRegistry) -> None:
    registry.add_migration("deepgram", migrate_deepgram)
