"""The shared HTTP transport against real servers on 127.0.0.1 (Starlette under uvicorn)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from speechbridge.errors import (
    AuthenticationError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
)
from speechbridge.reliability import Reliability
from speechbridge.testing.servers import LiveServer
from speechbridge.transports import (
    http_client,
    iter_ndjson,
    redact_url,
    retry_after_seconds,
    scrub,
    send_request,
    stream_request,
)

SECRET = "sk-very-secret-123"
NO_RETRIES = Reliability(retries=0)  # retries are tested in test_retries.py


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
    async with http_client(reliability=NO_RETRIES, timeout_s=5) as client:
        async with stream_request(client, "GET", url + "/ndjson", provider="acme") as response:
            lines = iter_ndjson(response, provider="acme")
            assert await anext(lines) == {"type": "text", "text": "hello"}
            assert await anext(lines) == {"type": "text", "text": "world"}
            app.state.gate.set()  # the server sends the last line only now
            assert [line async for line in lines] == [{"type": "end"}]


@pytest.mark.parametrize(("path", "match"), [("/malformed", "not a JSON line"), ("/not-object", "not a JSON object")])
async def test_malformed_ndjson_is_a_protocol_error(http_server: tuple[str, Starlette], path: str, match: str) -> None:
    async with (
        http_client(reliability=NO_RETRIES, timeout_s=5) as client,
        stream_request(client, "GET", http_server[0] + path, provider="a") as r,
    ):
        with pytest.raises(ProtocolError, match=match):
            [line async for line in iter_ndjson(r, provider="a")]


async def test_an_overlong_ndjson_line_is_refused(http_server: tuple[str, Starlette]) -> None:
    async with (
        http_client(reliability=NO_RETRIES, timeout_s=5) as client,
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
    async with http_client(reliability=NO_RETRIES, timeout_s=5) as client:
        with pytest.raises(error_type) as caught:
            await send_request(client, "GET", f"{http_server[0]}/status/{status}", provider="acme", secrets=[SECRET])
    assert caught.value.code == status and caught.value.retryable is retryable
    assert "key *** revoked" in str(caught.value) and SECRET not in str(caught.value)


async def test_http_429_carries_retry_after_even_through_a_vendor_table(http_server: tuple[str, Starlette]) -> None:
    def vendor(status: int, body: str) -> SpeechBridgeError:
        return ProviderError(body, provider="acme", code=status)

    async with http_client(reliability=NO_RETRIES, timeout_s=5) as client:
        with pytest.raises(RateLimitError) as caught:
            await send_request(client, "GET", f"{http_server[0]}/status/429", provider="acme", mapper=vendor)
    assert caught.value.retry_after == 2.0


async def test_a_streamed_error_body_is_read_through_the_vendor_table(http_server: tuple[str, Starlette]) -> None:
    def vendor(status: int, body: str) -> SpeechBridgeError:
        return InvalidRequest(f"{status}|{body}", provider="acme", code=status)

    async with http_client(reliability=NO_RETRIES, timeout_s=5) as client:
        with pytest.raises(InvalidRequest, match=r"500\|error from server 500: key \*\*\* revoked"):
            async with stream_request(
                client, "GET", f"{http_server[0]}/status/500", provider="acme", mapper=vendor, secrets=[SECRET]
            ):
                raise AssertionError("an error answer must not be yielded")


async def test_send_request_returns_the_answer_with_the_client_headers(http_server: tuple[str, Starlette]) -> None:
    async with http_client(reliability=NO_RETRIES, timeout_s=5, headers={"x-api-key": "k"}) as client:
        response = await send_request(client, "POST", http_server[0] + "/echo", provider="acme", content=b"abc")
    assert json.loads(response.content) == {"key": "k", "body": "abc"}


async def test_http_timeouts_and_refused_connections_are_transport_errors(http_server: tuple[str, Starlette]) -> None:
    async with http_client(reliability=NO_RETRIES, timeout_s=5, read_timeout_s=0.2) as client:
        with pytest.raises(TransportError, match="timed out") as caught:
            await send_request(client, "GET", f"{http_server[0]}/slow?token={SECRET}", provider="acme")
        assert SECRET not in str(caught.value) and "token=***" in str(caught.value)
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with http_client(reliability=NO_RETRIES, timeout_s=5) as client:
        with pytest.raises(TransportError, match="failed"):
            await send_request(client, "GET", f"http://127.0.0.1:{port}/", provider="acme")
