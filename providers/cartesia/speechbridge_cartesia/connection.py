"""A Cartesia TTS WebSocket carrying one or many contexts, each message handed to its ``context_id``'s handler.

An ``error`` with a ``context_id`` fails that context only (Cartesia keeps the socket open); one without it, a
malformed frame or the socket closing fails every context on the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import attrs

from speechbridge.errors import SpeechBridgeError
from speechbridge.transports import scrub
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error

from .client import ended_error
from .protocol import PROVIDER, ErrorOut, ServerMessage, parse_server_message

__all__ = ["ContextHandler", "TTSConnection"]

ContextHandler = Callable[[ServerMessage | SpeechBridgeError], None]


class TTSConnection:
    """One open ``/tts/websocket``; :meth:`add` a handler per context, :meth:`send` its requests."""

    def __init__(self, socket: WebSocket, secrets: tuple[str, ...]) -> None:
        self._socket = socket
        self._secrets = secrets
        self._handlers: dict[str, ContextHandler] = {}
        self.error: SpeechBridgeError | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def usable(self) -> bool:
        return self.error is None and not self._reader.done()

    def add(self, context_id: str, handler: ContextHandler) -> None:
        self._handlers[context_id] = handler

    def remove(self, context_id: str) -> None:
        self._handlers.pop(context_id, None)

    @property
    def contexts(self) -> int:
        return len(self._handlers)

    async def send(self, message: dict[str, Any]) -> None:
        """Send a request; a closed socket raises the typed error it closed with."""
        if self.error is not None:
            raise self.error
        try:
            await self._socket.send(json.dumps(message))
        except WebSocketClosed as exc:
            raise closed_error(exc, provider=PROVIDER, secrets=self._secrets) from None

    async def _read(self) -> None:
        try:
            async for frame in self._socket:
                message = parse_server_message(frame)
                if isinstance(message, ErrorOut):  # its text may echo the credentials
                    message = attrs.evolve(message, message=scrub(message.message, self._secrets))
                handler = self._handlers.get(getattr(message, "context_id", None) or "")
                if handler is not None:
                    handler(message)
                elif isinstance(message, ErrorOut) and message.context_id is None:
                    self._fail_all(message.to_error())
                    return
            self._fail_all(ended_error(self._socket, self._secrets))
        except WebSocketClosed as exc:
            self._fail_all(closed_error(exc, provider=PROVIDER, secrets=self._secrets))
        except SpeechBridgeError as error:
            self._fail_all(error)
            await self._socket.close()

    def _fail_all(self, error: SpeechBridgeError) -> None:
        self.error = error
        handlers, self._handlers = list(self._handlers.values()), {}
        for handler in handlers:
            handler(error)

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._socket.close()
