"""The portable engine: websockets' asyncio client, with pings that drop a peer that stops answering."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from . import HandshakeFailed, Message, Refused, WebSocket, WebSocketClosed

__all__ = ["open_websockets"]

CLOSE_TIMEOUT_S: Final = 2.0


class _WebsocketsSocket(WebSocket):
    engine = "websockets"

    def __init__(self, url: str, connection: ClientConnection) -> None:
        assert connection.response is not None
        super().__init__(url, connection.response.headers)
        self._connection = connection
        self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"websocket reader {self.url}")

    async def send(self, message: Message) -> None:
        try:
            await self._connection.send(message)
        except ConnectionClosed as exc:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            raise self.closed or _closed_from(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self._connection:
                self._received(message)
        close_exc = self._connection.protocol.close_exc
        self._terminated(_closed_from(close_exc))


def _closed_from(exc: ConnectionClosed) -> WebSocketClosed:
    if exc.rcvd is not None:
        return WebSocketClosed(exc.rcvd.code, exc.rcvd.reason)
    if exc.sent is not None and exc.sent.code == 1011 and "ping timeout" in exc.sent.reason:
        return WebSocketClosed(None, "no answer to a ping in time", dead_peer=True)
    if exc.sent is not None and exc.sent.code == 1009:  # we refused a message over the size limit
        return WebSocketClosed(1009, exc.sent.reason)
    return WebSocketClosed(None)


async def open_websockets(
    url: str, headers: dict[str, str], dead_peer_timeout_s: float, max_message_bytes: int
) -> WebSocket:
    """Connect with websockets' asyncio client."""
    try:
        connection = await connect(
            url,
            additional_headers=headers,
            open_timeout=None,
            max_size=max_message_bytes,
            compression=None,
            ping_interval=dead_peer_timeout_s / 2,  # a dead peer is found in interval + timeout + close timeout
            ping_timeout=dead_peer_timeout_s / 4,
            close_timeout=min(CLOSE_TIMEOUT_S, dead_peer_timeout_s / 4),
        )
    except InvalidStatus as exc:
        response = exc.response
        raise Refused(response.status_code, response.headers, bytes(response.body or b"")) from None
    except (InvalidURI, InvalidHandshake) as exc:
        raise HandshakeFailed(str(exc)) from None
    return _WebsocketsSocket(url, connection)
