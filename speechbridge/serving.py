"""Serving fronts: run an ASGI app with uvicorn (the ``server`` extra), and keep secrets out of its logs.

uvicorn logs every request line to standard error (standard output stays empty), and at debug level every WebSocket
handshake with its headers. Browser clients put single-use tokens in the URL (``?token=...``) and others send keys
in headers, so everything uvicorn logs passes through :func:`~speechbridge.transports.redact`, which masks the
values of token, key and secret query parameters and of credential headers.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.util
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from .errors import MissingDependency, TransportError
from .transports import RedactSecrets, redact

if TYPE_CHECKING:
    from .plugins import FrontFactory
    from .stt import STTProvider
    from .tts import TTSProvider

__all__ = ["ASGIApp", "RedactSecrets", "lazy_front", "listen", "redact", "redact_server_logs", "run", "serve"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
ASGIApp: TypeAlias = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

_SERVER_EXTRA: Final = {"starlette": "starlette", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def redact_server_logs() -> None:
    """Mask secrets in every record uvicorn logs (request lines, WebSocket handshakes), whatever handler shows it."""
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        if not any(isinstance(each, RedactSecrets) for each in logger.filters):
            logger.addFilter(RedactSecrets())


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); failing to bind is a TransportError."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server = socket.create_server((host, port), family=family)
        # asyncio sets TCP_NODELAY only on connections whose socket says TCP: without it, Nagle's algorithm and
        # delayed ACKs hold back small frames written in a row (words, then `flushed`) by about 40 ms
        return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=server.detach())
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until SIGINT or SIGTERM; ``on_listening(url)`` is called once it listens."""
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise MissingDependency("uvicorn", "server") from None
    config = uvicorn.Config(
        app, log_level=log_level, log_config=_log_config(uvicorn), lifespan="auto", ws="websockets-sansio"
    )
    redact_server_logs()
    sock = listen(host, port)
    try:
        if on_listening is not None:
            on_listening(_url_of(sock))
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()


def _log_config(uvicorn: Any) -> dict[str, Any]:
    """uvicorn's logging, every line to standard error through :class:`RedactSecrets`."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": RedactSecrets}}
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
        handler["filters"] = ["redact_secrets"]
    return config


def run(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info") -> None:
    """Serve ``app`` on ``host:port`` until interrupted (the blocking form of :func:`serve`)."""
    asyncio.run(serve(app, host=host, port=port, log_level=log_level))


def lazy_front(module: str) -> FrontFactory:
    """A front factory for ``registry.add_front`` that imports ``module`` and calls its ``make_app`` only when a front
    is made, so a backend's providers load without the ``server`` extra (whose absence is a MissingDependency)."""

    def make_front(stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, /, **options: Any) -> ASGIApp:
        for module_name, package in _SERVER_EXTRA.items():
            if importlib.util.find_spec(module_name) is None:
                raise MissingDependency(package, "server")
        app: ASGIApp = importlib.import_module(module).make_app(stt, tts, **options)
        return app

    make_front.__doc__ = f"The API served by ``stt`` and ``tts``: ``{module}.make_app``."
    return make_front
