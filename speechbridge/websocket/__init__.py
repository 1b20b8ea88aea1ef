"""Client WebSockets for every backend: one small interface over two engines, failures as typed errors.

:func:`connect_websocket` opens a :class:`WebSocket` on the fastest engine installed:

- ``picows`` (``pip install 'speechbridge[fast]'``): frames parsed and built in C, messages handed over by callback
  with no task or queue in between;
- ``websockets`` (a required dependency): the portable default.

``SPEECHBRIDGE_WEBSOCKET=websockets|picows`` forces one. Both send a ping when the line is idle and drop a connection
whose peer does not answer within ``dead_peer_timeout_s``, so a silent server is found in seconds, not minutes.

Receive in order with ``async for message in websocket`` (ends at a normal close, raises :class:`WebSocketClosed`
otherwise) or hand every message to a callback with :meth:`WebSocket.listen`. A refused handshake becomes
:class:`~speechbridge.errors.AuthenticationError`, :class:`~speechbridge.errors.RateLimitError` (with
``retry_after``) or :class:`~speechbridge.errors.ProviderError` through the vendor's table; an unreachable host or a
timeout becomes :class:`~speechbridge.errors.TransportError`; :func:`closed_error` types a close. URLs are shown
redacted and server text is scrubbed of the request's secrets.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import importlib.util
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Final, TypeAlias

from ..errors import ConfigError, ProviderError, SpeechBridgeError, TransportError
from ..transports import (
    DEFAULT_MAX_MESSAGE_BYTES,
    HTTPErrorMapper,
    redact_url,
    scrub,
    typed_http_error,
)

__all__ = [
    "ENGINES",
    "CloseMapper",
    "HandshakeFailed",
    "Message",
    "Refused",
    "WebSocket",
    "WebSocketClosed",
    "closed_error",
    "connect_websocket",
    "default_engine",
]

Message: TypeAlias = str | bytes
"""A whole WebSocket message: text as ``str``, binary as ``bytes``."""
CloseMapper: TypeAlias = Callable[[int | None, str], SpeechBridgeError]
"""A vendor's table from a WebSocket close code (or error-frame code) and reason to a typed error."""

ENGINES: Final = ("picows", "websockets")
_RETRYABLE_CLOSE_CODES: Final = (1011, 1012, 1013, 1014)
_NORMAL_CLOSE_CODES: Final = (1000, 1001)

log = logging.getLogger("speechbridge.websocket")


class Refused(Exception):
    """The server answered the upgrade with an HTTP error."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body


class HandshakeFailed(Exception):
    """The upgrade failed for another reason (not a WebSocket server, a malformed answer)."""


class WebSocketClosed(Exception):
    """The connection is closed: ``code`` and ``reason`` of the close frame received (``code`` None when the
    connection was cut without one). ``dead_peer`` says the peer stopped answering pings."""

    def __init__(self, code: int | None, reason: str = "", *, dead_peer: bool = False) -> None:
        super().__init__(f"closed with code {code}" + (f" ({reason})" if reason else "") if code else "connection lost")
        self.code = code
        self.reason = reason
        self.dead_peer = dead_peer

    @property
    def normal(self) -> bool:
        """A close frame said the session ended normally (1000 or 1001)."""
        return self.code in _NORMAL_CLOSE_CODES


def closed_error(
    closed: WebSocketClosed,
    *,
    provider: str,
    mapper: CloseMapper | None = None,
    secrets: Iterable[str | None] = (),
) -> SpeechBridgeError:
    """The typed error for a WebSocket that closed while a request still expected answers.

    A cut connection, a dead peer or a normal close (1000/1001) is a retryable :class:`TransportError`; other codes
    go through the vendor's ``mapper`` (its error-frame table), else 1011-1014 are retryable :class:`ProviderError`
    and the rest are not.
    """
    reason = scrub(closed.reason, secrets)
    if closed.dead_peer:
        return TransportError(f"the server stopped answering ({reason})", provider=provider)
    if closed.code is None or closed.code in (*_NORMAL_CLOSE_CODES, 1006):
        told = " without a close frame"
        if closed.code is not None:
            told = f" with code {closed.code}" + (f" ({reason})" if reason else "")
        return TransportError(f"the connection closed{told} before the request finished", provider=provider)
    message = reason or f"connection closed with code {closed.code}"
    if mapper is not None:
        return mapper(closed.code, message)
    return ProviderError(message, provider=provider, code=closed.code, retryable=closed.code in _RETRYABLE_CLOSE_CODES)


class WebSocket(abc.ABC):
    """An open client WebSocket.

    ``send`` text (``str``) or binary (``bytes``) messages; receive them with ``async for`` / :meth:`recv`, or pass
    each one to a callback with :meth:`listen`. ``closed`` is the :class:`WebSocketClosed` once the connection is over.
    """

    engine: str

    def __init__(self, url: str, response_headers: Mapping[str, str]) -> None:
        self.url = redact_url(url)
        self.response_headers = response_headers
        self.closed: WebSocketClosed | None = None
        self._inbox: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._on_message: Callable[[Message], None] | None = None
        self._on_close: Callable[[WebSocketClosed], None] | None = None

    def __repr__(self) -> str:
        return f"<WebSocket {self.url} ({self.engine}){' closed' if self.closed else ''}>"

    @abc.abstractmethod
    async def send(self, message: Message) -> None:
        """Send one message; raises :class:`WebSocketClosed` once the connection is closed."""

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and wait (briefly) for the peer to agree. Safe to call twice."""

    def listen(self, on_message: Callable[[Message], None], on_close: Callable[[WebSocketClosed], None]) -> None:
        """Hand every message to ``on_message`` as it arrives (messages already received first), and the end of the
        connection to ``on_close``. Exceptions from the callbacks close the connection (1011) and are logged."""
        self._on_message, self._on_close = on_message, on_close
        while self._inbox and self._on_message is not None:
            self._received(self._inbox.popleft())
        if self.closed is not None:
            self._notify_closed(self.closed)

    async def recv(self) -> Message:
        """The next message; raises :class:`WebSocketClosed` once none is left."""
        while not self._inbox:
            if self.closed is not None:
                raise self.closed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._inbox.popleft()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        """Messages until a normal close; any other end raises :class:`WebSocketClosed`."""
        while True:
            try:
                message = await self.recv()
            except WebSocketClosed as closed:
                if closed.normal:
                    return
                raise
            yield message

    # --- for the engines ------------------------------------------------------------------------------------------

    def _received(self, message: Message) -> None:
        on_message = self._on_message
        if on_message is not None:  # the live path: called for every message, so the handler is called here
            try:
                on_message(message)
            except Exception:
                self._handler_failed()
            return
        self._inbox.append(message)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _terminated(self, closed: WebSocketClosed) -> None:
        if self.closed is not None:
            return
        self.closed = closed
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._notify_closed(closed)

    def _handler_failed(self) -> None:
        log.exception("a message handler of %s failed; closing the connection", self.url)
        self._on_message = None
        asyncio.get_running_loop().create_task(self.close(1011, "client error"))

    def _notify_closed(self, closed: WebSocketClosed) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(closed)


def default_engine() -> str:
    """The engine :func:`connect_websocket` uses: ``SPEECHBRIDGE_WEBSOCKET`` if set, else picows when installed."""
    chosen = os.environ.get("SPEECHBRIDGE_WEBSOCKET", "").strip().lower()
    if chosen:
        if chosen not in ENGINES:
            raise ConfigError(f"SPEECHBRIDGE_WEBSOCKET={chosen!r} is not an engine", allowed=ENGINES)
        return chosen
    return "picows" if importlib.util.find_spec("picows") is not None else "websockets"


async def connect_websocket(
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    open_timeout: float = 10.0,
    dead_peer_timeout_s: float = 10.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    http_error: HTTPErrorMapper | None = None,
    secrets: Iterable[str | None] = (),
    engine: str | None = None,
) -> WebSocket:
    """Open a WebSocket to ``url``.

    A handshake the server refuses becomes the error ``http_error`` (the vendor's table) or :func:`error_from_status`
    makes of its status and body (429 is always a :class:`RateLimitError` with ``Retry-After``); an unreachable host,
    a failed handshake or ``open_timeout`` passing becomes :class:`TransportError`. ``secrets`` (the key, a token)
    are scrubbed from any server text put into an error.
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ConfigError(f"unknown WebSocket engine {engine!r}", allowed=ENGINES, provider=provider)
    secrets = tuple(secrets)
    shown = redact_url(url)
    if not url.startswith(("ws://", "wss://")):
        raise ConfigError(f"not a WebSocket URL: {shown!r} (accepted: ws://... or wss://...)", provider=provider)
    if engine == "picows":
        from .picows_engine import open_picows as opener
    else:
        from .websockets_engine import open_websockets as opener
    try:
        async with asyncio.timeout(open_timeout):
            return await opener(url, dict(headers or {}), dead_peer_timeout_s, max_message_bytes)
    except Refused as refused:
        body = scrub(refused.body.decode("utf-8", "replace"), secrets)
        raise typed_http_error(refused.status, body, refused.headers, provider=provider, mapper=http_error) from None
    except HandshakeFailed as failed:
        raise TransportError(f"WebSocket handshake with {shown} failed: {failed}", provider=provider) from None
    except TimeoutError:
        raise TransportError(f"connecting to {shown} timed out after {open_timeout:g} s", provider=provider) from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {shown}: {exc.strerror or exc}", provider=provider) from None
