"""Serving fronts: run an ASGI app with uvicorn (the ``server`` extra), and keep secrets out of its logs.

uvicorn logs every request line to standard error (standard output stays empty). Browser clients put single-use
tokens in the URL (``?token=...``), so every URL in what it logs passes through
:func:`~speechbridge.transports.redact_url`, which masks the values of token, key and secret query parameters.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.util
import logging
import re
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from .errors import MissingDependency, TransportError
from .transports import redact_url

if TYPE_CHECKING:
    from .plugins import FrontFactory
    from .stt import STTProvider
    from .tts import TTSProvider

__all__ = ["ASGIApp", "RedactSecrets", "lazy_front", "listen", "redact", "run", "serve"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
ASGIApp: TypeAlias = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

_SERVER_EXTRA: Final = {"starlette": "starlette", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}
_WITH_QUERY: Final = re.compile(r"[^\s\"'?]*\?[^\s\"']+")  # a URL or path with a query string


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters of every URL or path in it replaced by ``***``."""
    return _WITH_QUERY.sub(lambda found: redact_url(found.group()), text)


class RedactSecrets(logging.Filter):
    """Masks secret query parameters in a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); failing to bind is a TransportError."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
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
