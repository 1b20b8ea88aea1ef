"""The shared transports against real servers on 127.0.0.1: websockets (WebSocket), Starlette under uvicorn (HTTP)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator
from http import HTTPStatus

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WSRequest
from websockets.http11 import Response as WSResponse

from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
)
from speechbridge.testing.servers import LiveServer
from speechbridge.transports import (
    closed_error,
    connect_websocket,
    http_client,
    iter_ndjson,
    redact_url,
    retry_after_seconds,
    scrub,
    send_request,
    stream_request,
)

SECRET = "sk-very-secret-123"


# --- pure helpers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://api.example/speech?token=abc&model=x", "wss://api.example/speech?token=***&model=x"),
        ("https://h/p?api_key=k1&X-Signature=s", "https://h/p?api_key=***&X-Signature=***"),
        ("https://user:pw@h/p", "https://user:***@h/p"),
        ("ws://127.0.0.1:8080/api/speech/asr", "ws://127.0.0.1:8080/api/speech/asr"),
    ],
)
def test_redact_url_hides_secrets_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_removes_secrets_and_shortens() -> None:
    assert scrub(f"  bad key {SECRET}\n", [SECRET, None, ""]) == "bad key ***"
    assert scrub("x" * 2000).endswith("…") and len(scrub("x" * 2000)) == 501


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("-2") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_seconds(later) <= 31  # type: ignore[operator]


# --- WebSocket --------------------------------------------------------------------------------------------------


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
    async for message in websocket:
        assert isinstance(message, str)
        if message.startswith("close "):
            code, _, reason = message.removeprefix("close ").partition(" ")
            await websocket.close(int(code), reason)
            return
        if message == "drop":
            websocket.transport.abort()
            return
        await websocket.send(f"echo {message}")


@pytest.fixture
async def ws_server() -> AsyncIterator[str]:
    server: Server
    async with serve(_handler, "127.0.0.1", 0, process_request=_reject) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_connect_sends_headers_and_talks(ws_server: str) -> None:
    websocket = await connect_websocket(ws_server + "/talk", provider="acme", headers={"x-api-key": SECRET})
    async with websocket:
        assert websocket.request is not None and websocket.request.headers["x-api-key"] == SECRET
        await websocket.send("hi")
        assert await websocket.recv() == "echo hi"


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [(401, AuthenticationError, False), (403, AuthenticationError, False), (500, ProviderError, True)],
)
async def test_a_refused_handshake_is_a_typed_error(
    ws_server: str, status: int, error_type: type[ProviderError], retryable: bool
) -> None:
    with pytest.raises(error_type) as caught:
        await connect_websocket(f"{ws_server}/status/{status}?token={SECRET}", provider="acme", secrets=[SECRET])
    assert type(caught.value) is error_type
    assert caught.value.code == status and caught.value.retryable is retryable
    assert "refused: your key *** is wrong" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.args)


async def test_429_on_the_handshake_carries_retry_after(ws_server: str) -> None:
    with pytest.raises(RateLimitError) as caught:
        await connect_websocket(f"{ws_server}/status/429", provider="acme")
    assert caught.value.retry_after == 7.0 and caught.value.retryable


async def test_the_vendor_table_maps_handshake_statuses(ws_server: str) -> None:
    def vendor(status: int, body: str) -> SpeechBridgeError:
        return InvalidRequest(f"vendor says {status}: {body}", provider="acme", code=status)

    with pytest.raises(InvalidRequest, match="vendor says 400: refused"):
        await connect_websocket(f"{ws_server}/status/400", provider="acme", http_error=vendor, secrets=[SECRET])


async def test_an_unreachable_host_is_a_transport_error() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    with pytest.raises(TransportError, match="cannot connect") as caught:
        await connect_websocket(f"ws://127.0.0.1:{port}/x?token={SECRET}", provider="acme")
    assert caught.value.retryable
    assert SECRET not in str(caught.value) and "token=***" in str(caught.value)


async def test_a_silent_server_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []
    listener = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"timed out after 0\.2 s"):
            await connect_websocket(f"ws://127.0.0.1:{port}/", provider="acme", open_timeout=0.2)
        assert time.monotonic() - started < 2
        for writer in writers:
            writer.close()


async def test_a_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a WebSocket URL") as caught:
        await connect_websocket(f"http://example.invalid/?token={SECRET}", provider="acme")
    assert SECRET not in str(caught.value)


async def _closed_by(ws_server: str, command: str) -> ConnectionClosed:
    websocket = await connect_websocket(ws_server + "/talk", provider="acme")
    await websocket.send(command)
    with pytest.raises(ConnectionClosed) as caught:
        await websocket.recv()
    return caught.value


async def test_close_codes_become_typed_errors(ws_server: str) -> None:
    internal = closed_error(await _closed_by(ws_server, "close 1011 worker died"), provider="acme")
    assert type(internal) is ProviderError and internal.code == 1011 and internal.retryable
    assert "worker died" in str(internal)
    policy = closed_error(
        await _closed_by(ws_server, f"close 1008 key {SECRET} revoked"), provider="a", secrets=[SECRET]
    )
    assert type(policy) is ProviderError and not policy.retryable and SECRET not in str(policy)
    early = closed_error(await _closed_by(ws_server, "close 1000 bye"), provider="acme")
    assert type(early) is TransportError and "1000" in str(early) and early.retryable
    dropped = closed_error(await _closed_by(ws_server, "drop"), provider="acme")
    assert type(dropped) is TransportError and "without a close frame" in str(dropped)


async def test_close_codes_go_through_the_vendor_table(ws_server: str) -> None:
    seen: list[tuple[int | None, str]] = []

    def vendor(code: int | None, reason: str) -> SpeechBridgeError:
        seen.append((code, reason))
        return AuthenticationError(reason, provider="acme", code=code)

    error = closed_error(await _closed_by(ws_server, "close 1008 revoked"), provider="acme", mapper=vendor)
    assert isinstance(error, AuthenticationError) and seen == [(1008, "revoked")]
    assert isinstance(closed_error(await _closed_by(ws_server, "close 1001 away"), provider="a", mapper=vendor),
                      TransportError)  # fmt: skip


# --- HTTP -------------------------------------------------------------------------------------------------------


async def _ndjson(request: Request) -> Response:
    gate: asyncio.Event = request.app.state.gate

    async def body() -> AsyncIterator[bytes]:
        yield b'{"type": "text", "text": "he'
        yield b'llo"}\n\n{"type": "text", "text": "world"}\n'
        await asyncio.wait_for(gate.wait(), 5)
        yield b'{"type": "end"}'  # no final newline

    return StreamingResponse(body(), media_type="application/x-ndjson")


async def _malformed(request: Request) -> Response:
    return StreamingResponse(iter([b'{"ok": 1}\n', b"not json\n"]), media_type="application/x-ndjson")


async def _not_an_object(request: Request) -> Response:
    return PlainTextResponse("[1, 2]\n")


async def _long(request: Request) -> Response:
    return PlainTextResponse('{"text": "' + "x" * 5000 + '"}\n')


async def _status(request: Request) -> Response:
    status = int(request.path_params["code"])
    headers = {"Retry-After": "2"} if status == 429 else {}
    return PlainTextResponse(f"error from server {status}: key {SECRET} revoked", status_code=status, headers=headers)


async def _slow(request: Request) -> Response:
    await asyncio.sleep(0.5)
    return PlainTextResponse("late")


async def _echo(request: Request) -> Response:
    return JSONResponse({"key": request.headers.get("x-api-key"), "body": (await request.body()).decode()})


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, Starlette]]:
    app = Starlette(
        routes=[
            Route("/ndjson", _ndjson),
            Route("/malformed", _malformed),
            Route("/not-object", _not_an_object),
            Route("/long", _long),
            Route("/status/{code}", _status),
            Route("/slow", _slow),
            Route("/echo", _echo, methods=["POST"]),
        ]
    )
    app.state.gate = asyncio.Event()
    async with LiveServer(app) as server:
        yield server.url, app


async def test_ndjson_objects_arrive_as_soon_as_their_line_is_complete(http_server: tuple[str, Starlette]) -> None:
    url, app = http_server
    async with http_client(timeout_s=5) as client:
        async with stream_request(client, "GET", url + "/ndjson", provider="acme") as response:
            lines = iter_ndjson(response, provider="acme")
            assert await anext(lines) == {"type": "text", "text": "hello"}
            assert await anext(lines) == {"type": "text", "text": "world"}
            app.state.gate.set()  # the server sends the last line only now
            assert [line async for line in lines] == [{"type": "end"}]


@pytest.mark.parametrize(("path", "match"), [("/malformed", "not a JSON line"), ("/not-object", "not a JSON object")])
async def test_malformed_ndjson_is_a_protocol_error(http_server: tuple[str, Starlette], path: str, match: str) -> None:
    async with (
        http_client(timeout_s=5) as client,
        stream_request(client, "GET", http_server[0] + path, provider="a") as r,
    ):
        with pytest.raises(ProtocolError, match=match):
            [line async for line in iter_ndjson(r, provider="a")]


async def test_an_overlong_ndjson_line_is_refused(http_server: tuple[str, Starlette]) -> None:
    async with (
        http_client(timeout_s=5) as client,
        stream_request(client, "GET", http_server[0] + "/long", provider="a") as r,
    ):
        with pytest.raises(ProtocolError, match="longer than 1000 bytes"):
            [line async for line in iter_ndjson(r, provider="a", max_line_bytes=1000)]


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [(401, AuthenticationError, False), (404, ProviderError, False), (503, ProviderError, True)],
)
async def test_http_errors_are_typed(
    http_server: tuple[str, Starlette], status: int, error_type: type[ProviderError], retryable: bool
) -> None:
    async with http_client(timeout_s=5) as client:
        with pytest.raises(error_type) as caught:
            await send_request(client, "GET", f"{http_server[0]}/status/{status}", provider="acme", secrets=[SECRET])
    assert caught.value.code == status and caught.value.retryable is retryable
    assert "key *** revoked" in str(caught.value) and SECRET not in str(caught.value)


async def test_http_429_carries_retry_after_even_through_a_vendor_table(http_server: tuple[str, Starlette]) -> None:
    def vendor(status: int, body: str) -> SpeechBridgeError:
        return ProviderError(body, provider="acme", code=status)

    async with http_client(timeout_s=5) as client:
        with pytest.raises(RateLimitError) as caught:
            await send_request(client, "GET", f"{http_server[0]}/status/429", provider="acme", mapper=vendor)
    assert caught.value.retry_after == 2.0


async def test_a_streamed_error_body_is_read_through_the_vendor_table(http_server: tuple[str, Starlette]) -> None:
    def vendor(status: int, body: str) -> SpeechBridgeError:
        return InvalidRequest(f"{status}|{body}", provider="acme", code=status)

    async with http_client(timeout_s=5) as client:
        with pytest.raises(InvalidRequest, match=r"500\|error from server 500: key \*\*\* revoked"):
            async with stream_request(
                client, "GET", f"{http_server[0]}/status/500", provider="acme", mapper=vendor, secrets=[SECRET]
            ):
                raise AssertionError("an error answer must not be yielded")


async def test_send_request_returns_the_answer_with_the_client_headers(http_server: tuple[str, Starlette]) -> None:
    async with http_client(timeout_s=5, headers={"x-api-key": "k"}) as client:
        response = await send_request(client, "POST", http_server[0] + "/echo", provider="acme", content=b"abc")
    assert json.loads(response.content) == {"key": "k", "body": "abc"}


async def test_http_timeouts_and_refused_connections_are_transport_errors(http_server: tuple[str, Starlette]) -> None:
    async with http_client(timeout_s=5, read_timeout_s=0.2) as client:
        with pytest.raises(TransportError, match="timed out") as caught:
            await send_request(client, "GET", f"{http_server[0]}/slow?token={SECRET}", provider="acme")
        assert SECRET not in str(caught.value) and "token=***" in str(caught.value)
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with http_client(timeout_s=5) as client:
        with pytest.raises(TransportError, match="failed"):
            await send_request(client, "GET", f"http://127.0.0.1:{port}/", provider="acme")
