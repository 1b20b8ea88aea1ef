"""The WebSocket layer on both engines against real servers on 127.0.0.1 (websockets' asyncio server)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from http import HTTPStatus

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request as WSRequest
from websockets.http11 import Response as WSResponse

from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProviderError,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
)
from speechbridge.websocket import ENGINES, Message, WebSocketClosed, closed_error, connect_websocket, default_engine

SECRET = "sk-very-secret-123"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _reject(connection: ServerConnection, request: WSRequest) -> WSResponse | None:
    """Answer the upgrade of /status/<code> with that HTTP status."""
    if not request.path.startswith("/status/"):
        return None
    status = HTTPStatus(int(request.path.split("/")[2].split("?")[0]))
    response = connection.respond(status, f"refused: your key {SECRET} is wrong\n")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        response.headers["Retry-After"] = "7"
    return response


async def _handler(websocket: ServerConnection) -> None:
    await websocket.send(f"you sent {websocket.request.headers.get('x-api-key')}")  # type: ignore[union-attr]
    async for message in websocket:
        if isinstance(message, bytes):
            await websocket.send(message[::-1])
            continue
        if message.startswith("close "):
            code, _, reason = message.removeprefix("close ").partition(" ")
            await websocket.close(int(code), reason)
            return
        if message == "drop":
            websocket.transport.abort()
            return
        if message == "fragments":
            await websocket.send(["one ", "two ", "three"])
            continue
        if message.startswith("big "):
            await websocket.send("x" * int(message.removeprefix("big ")))
            continue
        await websocket.send(f"echo {message}")


@pytest.fixture
async def ws_server() -> AsyncIterator[str]:
    server: Server
    async with serve(_handler, "127.0.0.1", 0, process_request=_reject, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_connect_sends_headers_and_talks_both_ways(ws_server: str, engine: str) -> None:
    websocket = await connect_websocket(
        ws_server + "/talk", provider="acme", headers={"x-api-key": "k1"}, engine=engine
    )
    assert websocket.engine == engine and await websocket.recv() == "you sent k1"
    await websocket.send("hi")
    assert await websocket.recv() == "echo hi"
    await websocket.send(b"\x01\x02\x03")
    assert await websocket.recv() == b"\x03\x02\x01"
    await websocket.send("fragments")
    assert await websocket.recv() == "one two three"
    await websocket.close()
    assert websocket.closed is not None and websocket.closed.normal
    with pytest.raises(WebSocketClosed):
        await websocket.send("late")


async def test_iteration_ends_at_a_normal_close_and_raises_otherwise(ws_server: str, engine: str) -> None:
    websocket = await connect_websocket(ws_server, provider="acme", engine=engine)
    await websocket.send("a")
    await websocket.send("close 1000 bye")
    assert [message async for message in websocket] == ["you sent None", "echo a"]
    websocket = await connect_websocket(ws_server, provider="acme", engine=engine)
    await websocket.send("close 1011 worker died")
    with pytest.raises(WebSocketClosed) as caught:
        async for _ in websocket:
            pass
    assert caught.value.code == 1011 and caught.value.reason == "worker died" and not caught.value.normal


async def test_listen_hands_over_every_message_then_the_close(ws_server: str, engine: str) -> None:
    websocket = await connect_websocket(ws_server, provider="acme", engine=engine)
    await websocket.send("a")
    await asyncio.sleep(0.05)  # the greeting and the echo are already waiting: listen() delivers them first
    got: list[Message] = []
    ended: asyncio.Future[WebSocketClosed] = asyncio.get_running_loop().create_future()
    websocket.listen(got.append, ended.set_result)
    await websocket.send("b")
    await websocket.send("close 4000 done")
    closed = await asyncio.wait_for(ended, 5)
    assert got == ["you sent None", "echo a", "echo b"] and closed.code == 4000


async def test_a_message_over_the_limit_closes_the_connection(ws_server: str, engine: str) -> None:
    websocket = await connect_websocket(ws_server, provider="acme", engine=engine, max_message_bytes=1000)
    await websocket.recv()
    await websocket.send("big 999")
    assert len(await websocket.recv()) == 999
    await websocket.send("big 5000")
    with pytest.raises(WebSocketClosed) as caught:
        await websocket.recv()
    assert caught.value.code == 1009


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [(401, AuthenticationError, False), (403, AuthenticationError, False), (500, ProviderError, True)],
)
async def test_a_refused_handshake_is_a_typed_error(
    ws_server: str, engine: str, status: int, error_type: type[ProviderError], retryable: bool
) -> None:
    with pytest.raises(error_type) as caught:
        await connect_websocket(
            f"{ws_server}/status/{status}?token={SECRET}", provider="acme", secrets=[SECRET], engine=engine
        )
    assert type(caught.value) is error_type
    assert caught.value.code == status and caught.value.retryable is retryable
    assert "refused: your key *** is wrong" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.args)


async def test_429_on_the_handshake_carries_retry_after(ws_server: str, engine: str) -> None:
    with pytest.raises(RateLimitError) as caught:
        await connect_websocket(f"{ws_server}/status/429", provider="acme", engine=engine)
    assert caught.value.retry_after == 7.0 and caught.value.retryable


async def test_the_vendor_table_maps_handshake_statuses(ws_server: str, engine: str) -> None:
    def vendor(status: int, body: str) -> SpeechBridgeError:
        return InvalidRequest(f"vendor says {status}: {body}", provider="acme", code=status)

    with pytest.raises(InvalidRequest, match="vendor says 400: refused"):
        await connect_websocket(
            f"{ws_server}/status/400", provider="acme", http_error=vendor, secrets=[SECRET], engine=engine
        )


async def test_an_unreachable_host_is_a_transport_error(engine: str) -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    with pytest.raises(TransportError, match="cannot connect") as caught:
        await connect_websocket(f"ws://127.0.0.1:{port}/x?token={SECRET}", provider="acme", engine=engine)
    assert caught.value.retryable
    assert SECRET not in str(caught.value) and "token=***" in str(caught.value)


async def test_a_server_that_never_answers_the_upgrade_times_out(engine: str) -> None:
    writers: list[asyncio.StreamWriter] = []
    listener = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"timed out after 0\.2 s"):
            await connect_websocket(f"ws://127.0.0.1:{port}/", provider="acme", open_timeout=0.2, engine=engine)
        assert time.monotonic() - started < 2
        for writer in writers:
            writer.close()


async def test_a_server_gone_silent_is_found_within_the_dead_peer_timeout(engine: str) -> None:
    """The peer completes the upgrade, then reads nothing and answers nothing (no pong)."""

    async def upgrade_then_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")  # fmt: skip
        await asyncio.Event().wait()

    listener = await asyncio.start_server(upgrade_then_hang, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        websocket = await connect_websocket(
            f"ws://127.0.0.1:{port}/", provider="acme", dead_peer_timeout_s=0.6, engine=engine
        )
        started = time.monotonic()
        with pytest.raises(WebSocketClosed) as caught:
            await websocket.recv()
        assert time.monotonic() - started < 0.6 * 1.5
        assert caught.value.dead_peer
        error = closed_error(caught.value, provider="acme")
        assert isinstance(error, TransportError) and error.retryable and "stopped answering" in str(error)
        listener.close()


async def test_a_bad_url_or_engine_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="not a WebSocket URL") as caught:
        await connect_websocket(f"http://example.invalid/?token={SECRET}", provider="acme")
    assert SECRET not in str(caught.value)
    monkeypatch.setenv("SPEECHBRIDGE_WEBSOCKET", "tornado")
    with pytest.raises(ConfigError, match="allowed: picows, websockets"):
        default_engine()
    monkeypatch.setenv("SPEECHBRIDGE_WEBSOCKET", "websockets")
    assert default_engine() == "websockets"


async def _closed_by(ws_server: str, command: str, engine: str) -> WebSocketClosed:
    websocket = await connect_websocket(ws_server + "/talk", provider="acme", engine=engine)
    await websocket.recv()
    await websocket.send(command)
    with pytest.raises(WebSocketClosed) as caught:
        await websocket.recv()
    return caught.value


async def test_close_codes_become_typed_errors(ws_server: str, engine: str) -> None:
    internal = closed_error(await _closed_by(ws_server, "close 1011 worker died", engine), provider="acme")
    assert type(internal) is ProviderError and internal.code == 1011 and internal.retryable
    assert "worker died" in str(internal)
    policy = closed_error(
        await _closed_by(ws_server, f"close 1008 key {SECRET} revoked", engine), provider="a", secrets=[SECRET]
    )
    assert type(policy) is ProviderError and not policy.retryable and SECRET not in str(policy)
    early = closed_error(await _closed_by(ws_server, "close 1000 bye", engine), provider="acme")
    assert type(early) is TransportError and "1000" in str(early) and early.retryable
    dropped = closed_error(await _closed_by(ws_server, "drop", engine), provider="acme")
    assert type(dropped) is TransportError and "without a close frame" in str(dropped)


async def test_close_codes_go_through_the_vendor_table(ws_server: str, engine: str) -> None:
    seen: list[tuple[int | None, str]] = []

    def vendor(code: int | None, reason: str) -> SpeechBridgeError:
        seen.append((code, reason))
        return AuthenticationError(reason, provider="acme", code=code)

    error = closed_error(await _closed_by(ws_server, "close 1008 revoked", engine), provider="acme", mapper=vendor)
    assert isinstance(error, AuthenticationError) and seen == [(1008, "revoked")]
    away = closed_error(await _closed_by(ws_server, "close 1001 away", engine), provider="a", mapper=vendor)
    assert isinstance(away, TransportError)


async def test_a_sender_cancelled_while_the_socket_is_paused_leaves_the_others_waiting(ws_server: str) -> None:
    """picows: senders share one 'writable again' future; cancelling one of them must not cancel it for all."""
    websocket = await connect_websocket(ws_server + "/talk", provider="acme", engine="picows")
    assert await websocket.recv() == "you sent None"
    websocket.pause_writing()  # type: ignore[attr-defined]  (what picows calls when its buffer is full)
    first = asyncio.create_task(websocket.send("one"))
    second = asyncio.create_task(websocket.send("two"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert not second.done()
    websocket.resume_writing()  # type: ignore[attr-defined]
    await asyncio.wait_for(second, 2)
    assert [await websocket.recv(), await websocket.recv()] == ["echo one", "echo two"]
    await websocket.close()
