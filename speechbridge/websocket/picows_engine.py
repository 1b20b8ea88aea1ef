"""The compiled engine: picows (``speechbridge[fast]``), frames parsed in C and handed over by callback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import picows

from ..transports import RedactedLog
from . import HandshakeFailed, Message, Refused, WebSocket, WebSocketClosed
from .websockets_engine import CLOSE_TIMEOUT_S

__all__ = ["open_picows"]

_LOG: Final = RedactedLog(logging.getLogger("picows.speechbridge.websocket.picows"))  # handshakes show credentials
_TEXT: Final = picows.WSMsgType.TEXT
_BINARY: Final = picows.WSMsgType.BINARY
_CONTINUATION: Final = picows.WSMsgType.CONTINUATION
_CLOSE: Final = picows.WSMsgType.CLOSE


class _PicowsSocket(WebSocket, picows.WSListener):
    """A :class:`WebSocket` that is its own picows listener: frames arrive by callback, no task in between."""

    engine = "picows"

    def __init__(self, url: str, max_message_bytes: int) -> None:
        WebSocket.__init__(self, url, {})
        self._max_message_bytes = max_message_bytes
        self._transport: Any = None
        self._close_frame: WebSocketClosed | None = None
        self._fragments: list[bytes] = []
        self._fragment_type: Any = None
        self._writable: asyncio.Future[None] | None = None

    def on_ws_connected(self, transport: Any) -> None:
        self._transport = transport
        self.response_headers = transport.response.headers

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        kind = frame.msg_type
        if frame.payload_size > self._max_message_bytes:
            self._too_big(transport)
        elif kind is _TEXT and frame.fin:
            self._received(frame.get_payload_as_utf8_text())
        elif kind is _BINARY and frame.fin:
            self._received(frame.get_payload_as_bytes())
        elif kind is _CLOSE:
            self._close_frame = WebSocketClosed(frame.get_close_code().value, frame.get_close_reason() or "")
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif kind is _TEXT or kind is _BINARY or kind is _CONTINUATION:
            self._fragment(transport, frame)

    def _fragment(self, transport: Any, frame: Any) -> None:
        if frame.msg_type is not _CONTINUATION:
            self._fragments, self._fragment_type = [], frame.msg_type
        self._fragments.append(frame.get_payload_as_bytes())
        if sum(map(len, self._fragments)) > self._max_message_bytes:
            self._too_big(transport)
            return
        if frame.fin:
            whole = b"".join(self._fragments)
            self._fragments = []
            self._received(whole.decode() if self._fragment_type is _TEXT else whole)

    def _too_big(self, transport: Any) -> None:
        self._fragments = []
        self._close_frame = WebSocketClosed(1009, f"a message was longer than {self._max_message_bytes} bytes")
        transport.send_close(picows.WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
        transport.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        handshake = transport.close_handshake
        sent = handshake.sent if handshake is not None else None
        if self._close_frame is not None:
            self._terminated(self._close_frame)
        elif sent is not None and sent.code is picows.WSCloseCode.GOING_AWAY and "ping" in sent.reason:
            self._terminated(WebSocketClosed(None, "no answer to a ping in time", dead_peer=True))
        else:
            self._terminated(WebSocketClosed(None))

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    async def send(self, message: Message) -> None:
        if self.closed is not None or self._transport.is_close_frame_sent:
            raise self.closed or WebSocketClosed(None)
        self._transport.send(_TEXT if isinstance(message, str) else _BINARY, message)
        if self._writable is not None:  # shared by every sender: one being cancelled must not cancel the others
            await asyncio.shield(self._writable)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None and not self._transport.is_close_frame_sent:
            self._transport.send_close(picows.WSCloseCode(code), reason.encode())
        if self.closed is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._transport.wait_disconnected()
        self._transport.disconnect(graceful=False)


async def open_picows(
    url: str, headers: dict[str, str], dead_peer_timeout_s: float, max_message_bytes: int
) -> WebSocket:
    """Connect with picows."""
    half = dead_peer_timeout_s / 2
    try:
        _, socket = await picows.ws_connect(
            lambda: _PicowsSocket(url, max_message_bytes),
            url,
            extra_headers=headers,
            websocket_handshake_timeout=None,
            enable_auto_ping=True,
            auto_ping_idle_timeout=half,
            auto_ping_reply_timeout=half,
            max_frame_size=max_message_bytes,
            logger_name=_LOG,
        )
    except picows.WSHandshakeError as exc:
        response = exc.response
        if response is not None and int(response.status) >= 300:
            raise Refused(int(response.status), response.headers, exc.raw_body or response.body or b"") from None
        raise HandshakeFailed(str(exc)) from None
    assert isinstance(socket, _PicowsSocket)
    return socket
