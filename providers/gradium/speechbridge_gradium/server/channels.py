"""Where requests' replies go: a WebSocket carrying one or many requests, or a REST response of NDJSON lines.

On a WebSocket a failed request gets an ``error`` frame (stamped with its ``client_req_id``) and the socket is closed
with the error's code, unless the request was set up with ``close_ws_on_eos: false``: then only that request ends
and the socket carries on with the others. Errors that belong to no request (bad JSON, binary frames, a message
before any setup) close the socket. A request that ends closes the socket with 1000 unless ``close_ws_on_eos`` is
false. Faults (:class:`~.faults.Faults`) are applied to what is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from starlette.websockets import WebSocket

from speechbridge.errors import InvalidRequest, ProtocolError

from ..protocol import ClientMessage, Setup, parse_client_message, server_error, with_request
from .failures import POLICY, RequestError
from .faults import Faults
from .requests import Request

__all__ = ["DROPPED", "MAX_REQUESTS_PER_SOCKET", "NDJSONChannel", "WebSocketChannel"]

MAX_REQUESTS_PER_SOCKET: Final = 16  # requests open at once on one multiplexed socket, each with its backend stream
NORMAL_CLOSURE: Final = 1000
UNSUPPORTED_DATA: Final = 1003
MAX_REASON_BYTES: Final = 120
DROPPED: Final = object()  # the NDJSON stream is to be cut short

RequestFactory = Callable[["WebSocketChannel", Setup], Request]


def _reason(message: str) -> str:
    return message.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


class WebSocketChannel:
    """One client WebSocket: routes messages to requests by ``client_req_id`` and sends their replies."""

    def __init__(self, websocket: WebSocket, make_request: RequestFactory, faults: Faults | None) -> None:
        self.websocket = websocket
        self.make_request = make_request
        self.faults = faults
        self.requests: dict[str | None, Request] = {}
        self.closed = False
        self.dropped = False
        self._sent = 0
        self._multiplexed = False
        self._lock = asyncio.Lock()
        self._over = asyncio.Event()

    async def serve(self) -> None:
        """Read and answer until the client leaves, a request closes the socket, or a fault cuts it."""
        reader = asyncio.create_task(self._read())
        over = asyncio.create_task(self._over.wait())
        try:
            await asyncio.wait({reader, over}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, over):
                task.cancel()
            await asyncio.gather(reader, over, return_exceptions=True)
            for request in list(self.requests.values()):
                await request.cancel()
            self.requests.clear()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self.closed:
                return
            faults = self.faults
            if faults is not None:
                if faults.delay_s:
                    await asyncio.sleep(faults.delay_s)
                if faults.drop_after is not None and self._sent >= faults.drop_after:
                    self._drop()
                    return
                if faults.error_after is not None and self._sent >= faults.error_after:
                    error = with_request(
                        server_error(faults.error_message, faults.error_code), message.get("client_req_id")
                    )
                    await self._send_now(error)
                    await self._close_now(faults.error_code, faults.error_message)
                    return
            await self._send_now(message)

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            await self._close_now(code, reason)

    async def request_done(self, request: Request) -> None:
        if request.setup.close_ws_on_eos:
            await self.close(NORMAL_CLOSURE)
        else:
            self._forget(request)

    async def request_failed(self, request: Request, error: RequestError) -> None:
        keep = not request.setup.close_ws_on_eos
        if keep:
            self._forget(request)
        await self._refuse(request.client_req_id, error, keep_socket=keep)
        await request.cancel()

    def _forget(self, request: Request) -> None:
        if self.requests.get(request.client_req_id) is request:
            del self.requests[request.client_req_id]

    async def _send_now(self, message: dict[str, Any]) -> None:
        try:
            await self.websocket.send_text(json.dumps(message))
        except Exception:  # the client is gone, whatever the server layer calls it
            self.closed = True
            self._over.set()
            return
        self._sent += 1

    async def _close_now(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self.websocket.close(code, _reason(reason))
        self._over.set()

    def _drop(self) -> None:
        """Cut the connection with no close frame: the handler returns without closing and the server drops TCP."""
        self.closed = self.dropped = True
        self._over.set()

    async def _refuse(self, client_req_id: str | None, error: RequestError, *, keep_socket: bool) -> None:
        await self.send(with_request(server_error(error.message, error.code), client_req_id))
        if not keep_socket:
            await self.close(error.code, error.message)

    async def _read(self) -> None:
        while not self.closed:
            received = await self.websocket.receive()
            if received["type"] == "websocket.disconnect":
                self.closed = True
                return
            text = received.get("text")
            if text is None:
                error = RequestError(UNSUPPORTED_DATA, "binary frames are not accepted: send JSON text messages")
                await self._refuse(None, error, keep_socket=False)
                return
            try:
                message = parse_client_message(text)
            except (ProtocolError, InvalidRequest) as exc:
                code = exc.code if isinstance(exc, InvalidRequest) and isinstance(exc.code, int) else POLICY
                await self._refuse(None, RequestError(code, exc.message), keep_socket=False)
                return
            await self._dispatch(message)

    async def _dispatch(self, message: ClientMessage) -> None:
        key = message.client_req_id
        if isinstance(message, Setup):
            await self._set_up(message)
            return
        request = self.requests.get(key)
        if request is None:
            what = "missing setup message" + (f" for client_req_id {key!r}" if key is not None else "")
            await self._refuse(key, RequestError(POLICY, what), keep_socket=key is not None and self._multiplexed)
            return
        request.put(message)
        await request.room()  # a request with much unhandled input: stop reading until its worker catches up

    async def _set_up(self, setup: Setup) -> None:
        key, keep = setup.client_req_id, not setup.close_ws_on_eos
        self._multiplexed = self._multiplexed or keep
        if key in self.requests:
            what = (
                f"client_req_id {key!r} is already in use by a request that has not ended"
                if key is not None
                else "this socket already has a request: send end_of_stream first, or give requests a client_req_id"
            )
            await self._refuse(key, RequestError(POLICY, what), keep_socket=keep)
            return
        if len(self.requests) >= MAX_REQUESTS_PER_SOCKET:
            what = f"concurrency limit: this socket already has {MAX_REQUESTS_PER_SOCKET} requests open"
            await self._refuse(key, RequestError(POLICY, what), keep_socket=keep)
            return
        if self.faults is not None and self.faults.reject_setup is not None:
            await self._refuse(key, RequestError(self.faults.reject_setup, self.faults.error_message), keep_socket=keep)
            return
        try:
            request = self.make_request(self, setup)
        except RequestError as error:
            await self._refuse(key, error, keep_socket=keep)
            return
        self.requests[key] = request
        request.start()


class NDJSONChannel:
    """The replies of one REST request, as NDJSON lines for a streamed response (or collected by the caller)."""

    def __init__(self, faults: Faults | None) -> None:
        self.faults = faults
        self._queue: asyncio.Queue[bytes | object | None] = asyncio.Queue()
        self._sent = 0
        self._ended = False

    async def send(self, message: dict[str, Any]) -> None:
        if self._ended:
            return
        faults = self.faults
        if faults is not None:
            if faults.delay_s:
                await asyncio.sleep(faults.delay_s)
            if faults.drop_after is not None and self._sent >= faults.drop_after:
                self._end(DROPPED)
                return
            if faults.error_after is not None and self._sent >= faults.error_after:
                self._queue.put_nowait(_line(server_error(faults.error_message, faults.error_code)))
                self._end(None)
                return
        self._queue.put_nowait(_line(message))
        self._sent += 1

    async def request_done(self, request: Request) -> None:
        self._end(None)

    async def request_failed(self, request: Request, error: RequestError) -> None:
        if not self._ended:
            self._queue.put_nowait(_line(server_error(error.message, error.code)))
            self._end(None)
        await request.cancel()

    def _end(self, marker: object | None) -> None:
        self._ended = True
        self._queue.put_nowait(marker)

    async def lines(self) -> AsyncIterator[bytes | object]:
        """Every line until the end; :data:`DROPPED` last when a fault cuts the stream."""
        while (line := await self._queue.get()) is not None:
            yield line
            if line is DROPPED:
                return


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"
