"""Entry point of the Cartesia backend: the ``cartesia`` STT and TTS providers, and the ``cartesia`` front.

The front (a wire-compatible Cartesia server) needs the ``server`` extra (starlette, uvicorn); it is imported only
when a front is made, so the providers load without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speechbridge.errors import MissingDependency
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

from .stt import CartesiaSTT
from .tts import CartesiaTTS

if TYPE_CHECKING:
    from speechbridge.serving import ASGIApp

__all__ = ["cartesia_front", "speechbridge_register_fronts", "speechbridge_register_providers"]


def cartesia_front(stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, /, **options: Any) -> ASGIApp:
    """The Cartesia API served by ``stt`` and ``tts``: :func:`speechbridge_cartesia.server.make_app`."""
    try:
        from .server import make_app
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] in ("starlette", "uvicorn"):
            raise MissingDependency(error.name.split(".")[0], "server") from None
        raise
    return make_app(stt, tts, **options)


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(CartesiaSTT)
    registry.add_tts(CartesiaTTS)


@hookimpl
def speechbridge_register_fronts(registry: ProviderRegistry) -> None:
    registry.add_front("cartesia", cartesia_front)
