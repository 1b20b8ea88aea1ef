"""Gradium sockets and the pool against a small Gradium peer on 127.0.0.1 (websockets), written for routing tests.

The peer answers ``setup`` with ``ready``; a ``text`` message is echoed back as ``text`` (so routing is visible),
except commands: ``error`` (an error frame for that request), ``socket-error`` (an unstamped 1008 error, then close),
``garbage`` (a malformed frame), ``unstamped`` (a reply without ``client_req_id``), ``close <code>`` (close now).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from speechbridge_gradium.connection import ConnectionPool, Credentials, GradiumConnection, GradiumRequest
from speechbridge_gradium.protocol import (
    EndOfStreamIn,
    EndOfStreamOut,
    ReadyOut,
    Setup,
    TextIn,
    TextOut,
    client_end_of_stream,
    client_text,
    parse_client_message,
    server_end_of_stream,
    server_error,
    server_stt_ready,
    server_text,
    with_request,
)
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    ProtocolError,
    ProviderError,
    StreamClosed,
    TransportError,
)
from speechbridge.provider import Secret

KEY = "gd_test_key_123"
SETUP = Setup(kind="stt", input_format="pcm_16000")


@attrs.define
class Peer:
    url: str
    connections: list[ServerConnection] = attrs.field(factory=list)
    received: list[list[dict[str, Any]]] = attrs.field(factory=list)
    silent: bool = False  # never answer setup

    async def handle(self, websocket: ServerConnection) -> None:
        self.connections.append(websocket)
        log: list[dict[str, Any]] = []
        self.received.append(log)
        async for frame in websocket:
            log.append(json.loads(frame))
            message = parse_client_message(frame)
            req = message.client_req_id
            if isinstance(message, Setup) and not self.silent:
                await websocket.send(json.dumps(with_request(server_stt_ready("rid", "default", 16000, 8), req)))
            elif isinstance(message, TextIn):
                await self.command(websocket, message.text, req)
            elif isinstance(message, EndOfStreamIn):
                await websocket.send(json.dumps(with_request(server_end_of_stream(), req)))
                if log[0].get("close_ws_on_eos", True) is not False:
                    await websocket.close()

    async def command(self, websocket: ServerConnection, text: str, req: str | None) -> None:
        if text == "error":
            await websocket.send(json.dumps(with_request(server_error("worker failed", 1011), req)))
        elif text == "socket-error":
            await websocket.send(json.dumps(server_error(f"API key {KEY} is revoked or expired", 1008)))
            await websocket.close(1008, "API key is revoked or expired")
        elif text == "garbage":
            await websocket.send("{not json")
        elif text == "unstamped":
            await websocket.send(json.dumps(server_text("lonely", 0.0)))
        elif text.startswith("close "):
            await websocket.close(int(text.split()[1]), "bye")
        else:
            await websocket.send(json.dumps(with_request(server_text(text, 0.5), req)))


def _check_auth(connection: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("x-api-key") == KEY or "token=tok-" in request.path:
        return None
    return connection.respond(401, "error from server 1008: API key is revoked or expired\n")


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    holder: list[Peer] = []

    async def handler(websocket: ServerConnection) -> None:
        await holder[0].handle(websocket)

    async with serve(handler, "127.0.0.1", 0, process_request=_check_auth) as server:
        holder.append(Peer(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/speech/asr"))
        yield holder[0]


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(Credentials(api_key=Secret(KEY)))
    yield pool
    await pool.aclose()


async def _messages(request: GradiumRequest) -> list[Any]:
    async with asyncio.timeout(5):
        return [message async for message in request]


async def test_a_single_request_owns_its_socket(peer: Peer, pool: ConnectionPool) -> None:
    request = await pool.start(peer.url, SETUP, multiplex=False)
    ready = await request.ready(5)
    assert ready == ReadyOut("rid", 16000, 1280, 8)
    await request.send(client_text("hello"))
    await request.send(client_end_of_stream())
    assert await _messages(request) == [TextOut("hello", 0.5), EndOfStreamOut()]
    assert request.finished
    await request.aclose()
    assert request.connection.closed
    setup, *_ = peer.received[0]
    assert setup == {"type": "setup", "model_name": "default", "input_format": "pcm_16000"}
    headers = peer.connections[0].request.headers  # type: ignore[union-attr]
    assert headers["x-api-key"] == KEY and headers["x-api-source"] == "speechbridge"


async def test_multiplexed_requests_share_one_socket_and_get_only_their_replies(
    peer: Peer, pool: ConnectionPool
) -> None:
    requests = [await pool.start(peer.url, SETUP, multiplex=True) for _ in range(3)]
    assert len({request.client_req_id for request in requests}) == 3
    for request in requests:
        assert (await request.ready(5)).client_req_id == request.client_req_id
    for request in reversed(requests):
        await request.send(client_text(f"for {request.client_req_id}"))
        await request.send(client_end_of_stream())
    for request in requests:
        replies = await _messages(request)
        assert [m.text for m in replies if isinstance(m, TextOut)] == [f"for {request.client_req_id}"]
        assert replies[-1] == EndOfStreamOut(request.client_req_id)
        await request.aclose()
    assert len(peer.connections) == 1
    setups = [message for message in peer.received[0] if message["type"] == "setup"]
    assert all(setup["close_ws_on_eos"] is False for setup in setups)
    assert all("client_req_id" in message for message in peer.received[0])
    later = await pool.start(peer.url, SETUP, multiplex=True)  # sequential reuse of the same socket
    assert later.connection is requests[0].connection and len(peer.connections) == 1
    await later.aclose()


async def test_the_pool_opens_another_socket_past_its_request_limit(peer: Peer) -> None:
    pool = ConnectionPool(Credentials(api_key=Secret(KEY)), max_requests=2)
    try:
        requests = [await pool.start(peer.url, SETUP, multiplex=True) for _ in range(3)]
        assert len(peer.connections) == 2
        assert requests[0].connection is requests[1].connection is not requests[2].connection
        assert len(pool.connections(peer.url)) == 2
    finally:
        await pool.aclose()
    assert all(request.connection.closed for request in requests)


async def test_an_old_socket_is_retired_and_closes_with_its_last_request(peer: Peer) -> None:
    pool = ConnectionPool(Credentials(api_key=Secret(KEY)), max_age_s=0.0)
    try:
        first = await pool.start(peer.url, SETUP, multiplex=True)
        second = await pool.start(peer.url, SETUP, multiplex=True)
        assert first.connection is not second.connection and first.connection.retired
        assert not first.connection.closed
        await first.aclose()
        assert first.connection.closed
    finally:
        await pool.aclose()


async def test_an_error_frame_fails_only_its_request(peer: Peer, pool: ConnectionPool) -> None:
    doomed = await pool.start(peer.url, SETUP, multiplex=True)
    healthy = await pool.start(peer.url, SETUP, multiplex=True)
    await doomed.send(client_text("error"))
    with pytest.raises(ProviderError, match="worker failed") as caught:
        await _messages(doomed)
    assert type(caught.value) is ProviderError and caught.value.code == 1011 and caught.value.retryable
    with pytest.raises(ProviderError):  # raised again, not forgotten
        await doomed.send(client_text("more"))
    await healthy.send(client_text("still here"))
    await healthy.send(client_end_of_stream())
    assert TextOut("still here", 0.5, client_req_id=healthy.client_req_id) in await _messages(healthy)


async def test_an_unstamped_error_and_the_close_fail_every_request(peer: Peer, pool: ConnectionPool) -> None:
    requests = [await pool.start(peer.url, SETUP, multiplex=True) for _ in range(2)]
    await requests[0].send(client_text("socket-error"))
    for request in requests:
        with pytest.raises(AuthenticationError) as caught:
            await _messages(request)
        assert caught.value.code == 1008 and not caught.value.retryable
        assert KEY not in str(caught.value)
    assert requests[0].connection.closed or await _closed_soon(requests[0].connection)


async def _closed_soon(connection: GradiumConnection) -> bool:
    async with asyncio.timeout(5):
        while not connection.closed:
            await asyncio.sleep(0.01)
    return True


async def test_a_malformed_frame_fails_every_request(peer: Peer, pool: ConnectionPool) -> None:
    requests = [await pool.start(peer.url, SETUP, multiplex=True) for _ in range(2)]
    await requests[1].send(client_text("garbage"))
    for request in requests:
        with pytest.raises(ProtocolError, match="not a JSON message"):
            await _messages(request)


@pytest.mark.parametrize(
    ("code", "error_type", "retryable"), [(1011, ProviderError, True), (1000, TransportError, True)]
)
async def test_a_close_before_the_end_is_a_typed_error(
    peer: Peer, pool: ConnectionPool, code: int, error_type: type[Exception], retryable: bool
) -> None:
    request = await pool.start(peer.url, SETUP, multiplex=False)
    await request.send(client_text(f"close {code}"))
    with pytest.raises(error_type) as caught:
        await _messages(request)
    assert type(caught.value) is error_type and caught.value.retryable is retryable  # type: ignore[attr-defined]


async def test_an_unstamped_reply_goes_to_the_only_open_request(peer: Peer, pool: ConnectionPool) -> None:
    request = await pool.start(peer.url, SETUP, multiplex=True)
    await request.ready(5)
    await request.send(client_text("unstamped"))
    async with asyncio.timeout(5):
        assert await request.receive() == TextOut("lonely", 0.0)


async def test_an_abandoned_request_is_ended_and_its_socket_retired(peer: Peer, pool: ConnectionPool) -> None:
    abandoned = await pool.start(peer.url, SETUP, multiplex=True)
    busy = await pool.start(peer.url, SETUP, multiplex=True)
    socket = abandoned.connection
    await abandoned.send(client_text("late reply"))
    await abandoned.aclose()
    with pytest.raises(StreamClosed):
        await abandoned.send(client_text("too late"))
    assert socket.retired and not socket.closed  # still carries the busy request
    other = await pool.start(peer.url, SETUP, multiplex=True)
    assert other.connection is not socket
    await busy.send(client_text("mine"))
    await busy.send(client_end_of_stream())
    replies = await _messages(busy)
    assert [m.text for m in replies if isinstance(m, TextOut)] == ["mine"]  # the abandoned one's reply was dropped
    await busy.aclose()
    assert socket.closed
    assert {"type": "end_of_stream", "client_req_id": abandoned.client_req_id} in peer.received[0]


async def test_a_finished_request_leaves_its_socket_for_the_next(peer: Peer, pool: ConnectionPool) -> None:
    first = await pool.start(peer.url, SETUP, multiplex=True)
    await first.send(client_end_of_stream())
    await _messages(first)
    await first.aclose()
    second = await pool.start(peer.url, SETUP, multiplex=True)
    assert second.connection is first.connection and not first.connection.retired


async def test_a_client_req_id_cannot_be_reused_while_live(peer: Peer, pool: ConnectionPool) -> None:
    await pool.start(peer.url, attrs.evolve(SETUP, client_req_id="mine"), multiplex=True)
    with pytest.raises(ConfigError, match="already in use"):
        await pool.start(peer.url, attrs.evolve(SETUP, client_req_id="mine"), multiplex=True)


async def test_a_missing_ready_times_out(peer: Peer, pool: ConnectionPool) -> None:
    peer.silent = True
    request = await pool.start(peer.url, SETUP, multiplex=False)
    with pytest.raises(TransportError, match="no 'ready'"):
        await request.ready(0.2)


async def test_a_bad_key_is_refused_without_showing_it(peer: Peer) -> None:
    pool = ConnectionPool(Credentials(api_key=Secret("gd_wrong_key")))
    with pytest.raises(AuthenticationError) as caught:
        await pool.start(peer.url, SETUP, multiplex=False)
    assert caught.value.code == 1008 and not caught.value.retryable
    assert "gd_wrong_key" not in str(caught.value) + repr(pool.credentials)


async def test_tokens_go_in_the_url_and_a_token_source_mints_one_per_socket(peer: Peer) -> None:
    minted: list[str] = []

    async def mint() -> str:
        minted.append(f"tok-{len(minted)}")
        return minted[-1]

    pool = ConnectionPool(Credentials(token=mint))
    try:
        for _ in range(2):
            request = await pool.start(peer.url, SETUP, multiplex=False)
            await request.ready(5)
            await request.aclose()
    finally:
        await pool.aclose()
    paths = [connection.request.path for connection in peer.connections]  # type: ignore[union-attr]
    assert paths == ["/api/speech/asr?token=tok-0", "/api/speech/asr?token=tok-1"]
    assert all("x-api-key" not in c.request.headers for c in peer.connections)  # type: ignore[union-attr]
    assert "tok-" not in repr(request) and "tok-" not in request.connection.url


def test_credentials_need_a_key_or_a_token() -> None:
    with pytest.raises(ConfigError, match="GRADIUM_API_KEY"):
        Credentials()
    assert "gd_" not in repr(Credentials(api_key=Secret(KEY)))
