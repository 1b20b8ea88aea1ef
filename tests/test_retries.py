"""REST retries (issue 6): what the shared HTTP client tries again, how long it waits, and what it never retries.

Every server here is real HTTP on 127.0.0.1: a small Starlette app, or a vendor's front behind :class:`FailFirst`,
a middleware that answers the first requests with an error and counts every request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import httpx
import pytest
from speechbridge_cartesia.server import make_app as cartesia_front
from speechbridge_cartesia.stt import CartesiaSTT
from speechbridge_deepgram.account import create_token as deepgram_token
from speechbridge_deepgram.server import make_app as deepgram_front
from speechbridge_deepgram.stt import DeepgramSTT
from speechbridge_elevenlabs.protocol import error_from_rest as elevenlabs_errors
from speechbridge_elevenlabs.server import make_app as elevenlabs_front
from speechbridge_elevenlabs.stt import ElevenLabsSTT
from speechbridge_gradium.protocol import error_from_rest as gradium_errors
from speechbridge_gradium.server import make_app as gradium_front
from speechbridge_gradium.stt import GradiumSTT
from speechbridge_gradium.tts import GradiumTTS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from speechbridge.errors import (
    AuthenticationError,
    InvalidRequest,
    ProviderError,
    RateLimitError,
    TransportError,
    UnknownVoice,
)
from speechbridge.reliability import Reliability
from speechbridge.stt import STTProvider
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, SpeechSample
from speechbridge.transports import (
    RETRY_AFTER_FACTOR,
    RetryingClient,
    http_client,
    iter_ndjson,
    send_request,
    stream_request,
)

FAST: Final = Reliability(retries=3, backoff_s=0.01, max_backoff_s=0.1)  # waits Retry-After up to 0.4 s
SECRET: Final = "sk-very-secret"
KEY: Final = "test-key"


class Flaky:
    """A Starlette app whose ``/echo`` gives the queued ``answers`` first, then 200 with the request's body."""

    def __init__(self) -> None:
        self.answers: list[Response] = []
        self.bodies: list[bytes] = []
        self.times: list[float] = []
        self.app = Starlette(routes=[Route("/echo", self.echo, methods=["GET", "POST"]), Route("/ndjson", self.ndjson)])

    async def echo(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        self.times.append(time.monotonic())
        return self.answers.pop(0) if self.answers else Response(self.bodies[-1] or b"ok")

    async def ndjson(self, request: Request) -> StreamingResponse:
        self.times.append(time.monotonic())

        async def lines() -> AsyncIterator[bytes]:
            yield b'{"n": 1}\n'
            await asyncio.sleep(0.05)
            raise RuntimeError("the server fails mid-answer")

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @property
    def hits(self) -> int:
        return len(self.times)


class FailFirst:
    """ASGI middleware: the first ``count`` HTTP requests get ``status`` with ``body`` and ``headers``; the rest go
    to ``app``. ``hits`` counts every HTTP request."""

    def __init__(
        self, app: Any, *, count: int, status: int = 503, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.app, self.count, self.status, self.body = app, count, status, body
        self.headers = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
        self.hits = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.hits += 1
        if scope["type"] != "http" or self.hits > self.count:
            await self.app(scope, receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class CutOnce:
    """ASGI app: the first answer promises 100 bytes and the connection drops after 10; later ones are whole."""

    def __init__(self) -> None:
        self.hits = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.hits += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        if self.hits == 1:
            await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
            raise RuntimeError("the connection drops mid-body")
        await send({"type": "http.response.body", "body": b"x" * 100})


class Silent:
    """ASGI app that never answers; ``hits`` counts the requests."""

    def __init__(self) -> None:
        self.hits = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.hits += 1
            await asyncio.sleep(5)


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Flaky, str]]:
    server = Flaky()
    async with LiveServer(server.app) as live:
        yield server, live.url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the policy -------------------------------------------------------------------------------------------------


def test_delay_doubles_up_to_the_cap_with_equal_jitter() -> None:
    policy = Reliability(backoff_s=0.1, max_backoff_s=1.0)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0), (10_000, 1.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert max(delays) - min(delays) > ceiling / 4  # spread out, not in step
    assert policy.delay(3, retry_after=7.5) == 7.5
    assert Reliability(backoff_s=0).delay(4) == 0


def test_http_client_retries_with_the_policy_given_or_the_default() -> None:
    assert isinstance(http_client(timeout_s=1), RetryingClient)
    assert http_client(timeout_s=1).reliability == Reliability()
    assert http_client(timeout_s=1, reliability=FAST).reliability is FAST


# --- what is retried --------------------------------------------------------------------------------------------


async def test_429_waits_its_retry_after(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"slow down", 429, {"Retry-After": "0.3"})]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        response = await send_request(client, "GET", url + "/echo", provider="acme")
    assert response.status_code == 200 and server.hits == 2
    assert server.times[1] - server.times[0] >= 0.3  # the header, not FAST's 10 ms backoff


async def test_a_long_retry_after_goes_to_the_caller_at_once(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    too_long = RETRY_AFTER_FACTOR * FAST.max_backoff_s + 1
    server.answers = [Response(b"slow down", 429, {"Retry-After": str(too_long)})]
    started = time.monotonic()
    async with http_client(timeout_s=5, reliability=FAST) as client:
        with pytest.raises(RateLimitError) as caught:
            await send_request(client, "GET", url + "/echo", provider="acme")
    assert caught.value.retry_after == pytest.approx(too_long) and server.hits == 1
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_server_errors_are_retried_with_the_same_body(flaky: tuple[Flaky, str], status: int) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", status), Response(b"busy", status)]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        response = await send_request(client, "POST", url + "/echo", provider="acme", content=b"audio bytes")
    assert response.content == b"audio bytes" and server.bodies == [b"audio bytes"] * 3


async def test_multipart_bodies_are_replayed_whole(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", 503)]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        await send_request(client, "POST", url + "/echo", provider="a", data={"model": "m"}, files={"file": b"RIFF"})
    assert len(server.bodies) == 2 and server.bodies[0] == server.bodies[1] and b"RIFF" in server.bodies[0]


async def test_a_vendor_table_decides_what_a_500_means(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"error from server 1011: overloaded", 500)]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        await send_request(client, "GET", url + "/echo", provider="gradium", mapper=gradium_errors)
        assert server.hits == 2
        server.answers = [Response(b"error from server 1008: invalid api key", 500)]
        with pytest.raises(AuthenticationError):
            await send_request(client, "GET", url + "/echo", provider="gradium", mapper=gradium_errors)
    assert server.hits == 3  # the authentication error was not retried


async def test_the_budget_ends_with_the_last_error(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", 503) for _ in range(10)]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        with pytest.raises(ProviderError, match="busy") as caught:
            await send_request(client, "GET", url + "/echo", provider="acme")
    assert caught.value.retryable and server.hits == FAST.retries + 1


async def test_retries_zero_never_retries(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", 503)]
    async with http_client(timeout_s=5, reliability=Reliability(retries=0)) as client:
        with pytest.raises(ProviderError):
            await send_request(client, "GET", url + "/echo", provider="acme")
    assert server.hits == 1


async def test_a_refused_connection_is_retried_then_a_transport_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="speechbridge.transports")
    url = f"http://127.0.0.1:{free_port()}/x?token={SECRET}"
    async with http_client(timeout_s=5, reliability=FAST, headers={"x-api-key": SECRET}) as client:
        with pytest.raises(TransportError):
            await send_request(client, "GET", url, provider="acme", secrets=[SECRET])
    retries = [record for record in caplog.records if record.getMessage().startswith("retrying GET")]
    assert len(retries) == FAST.retries and "ConnectError" in retries[0].getMessage()
    assert "token=***" in caplog.text and SECRET not in caplog.text


async def test_a_silent_server_is_retried_after_each_timeout() -> None:
    silent = Silent()
    async with (
        LiveServer(silent, shutdown_timeout=0.1) as live,
        http_client(timeout_s=5, read_timeout_s=0.1, reliability=Reliability(retries=1, backoff_s=0.01)) as client,
    ):
        with pytest.raises(TransportError, match="timed out"):
            await send_request(client, "GET", live.url, provider="acme")
    assert silent.hits == 2


async def test_an_answer_cut_before_its_end_is_retried_when_not_streamed() -> None:
    cut = CutOnce()
    async with LiveServer(cut) as live, http_client(timeout_s=5, reliability=FAST) as client:
        response = await send_request(client, "GET", live.url, provider="acme")
    assert response.content == b"x" * 100 and cut.hits == 2


# --- what is never retried --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b"bad key", AuthenticationError),
        (403, b"forbidden", AuthenticationError),
        (400, b'{"detail": {"status": "invalid_parameters", "message": "bad model"}}', InvalidRequest),
        (404, b"no such voice", InvalidRequest),
        (422, b'{"detail": [{"loc": ["body", "model_id"], "msg": "field required"}]}', InvalidRequest),
    ],
)
async def test_authentication_and_validation_errors_are_never_retried(
    flaky: tuple[Flaky, str], status: int, body: bytes, error: type[Exception]
) -> None:
    server, url = flaky
    server.answers = [Response(body, status)]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        with pytest.raises(error):
            await send_request(client, "POST", url + "/echo", provider="elevenlabs", mapper=elevenlabs_errors)
    assert server.hits == 1


async def test_without_a_vendor_table_a_4xx_is_not_retried(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"no", 400)]
    async with http_client(timeout_s=5, reliability=FAST) as client:
        with pytest.raises(ProviderError):
            await send_request(client, "GET", url + "/echo", provider="acme")
    assert server.hits == 1


async def test_a_body_streamed_from_an_iterator_is_sent_once(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", 503)]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"live "
        yield b"audio"

    async with http_client(timeout_s=5, reliability=FAST) as client:
        with pytest.raises(ProviderError):
            await send_request(client, "POST", url + "/echo", provider="acme", content=chunks())
    assert server.bodies == [b"live audio"]


async def test_a_streamed_answer_is_not_retried_once_it_started(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    seen: list[dict[str, Any]] = []
    async with http_client(timeout_s=5, reliability=FAST) as client:
        with pytest.raises(TransportError):
            async with stream_request(client, "GET", url + "/ndjson", provider="acme") as response:
                async for message in iter_ndjson(response, provider="acme"):
                    seen.append(message)
    assert seen == [{"n": 1}] and server.hits == 1


async def test_a_streamed_request_is_retried_until_its_answer_starts(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", 503)]
    async with (
        http_client(timeout_s=5, reliability=FAST) as client,
        stream_request(client, "POST", url + "/echo", provider="acme", content=b"abc") as response,
    ):
        assert await response.aread() == b"abc"
    assert server.hits == 2


async def test_a_plain_httpx_client_is_left_alone(flaky: tuple[Flaky, str]) -> None:
    server, url = flaky
    server.answers = [Response(b"busy", 503)]
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError):
            await send_request(client, "GET", url + "/echo", provider="acme", mapper=gradium_errors)
    assert server.hits == 1


# --- every backend, through its front ---------------------------------------------------------------------------

Backend = Callable[..., STTProvider[Any]]
FRONTS: Final[dict[str, tuple[Callable[..., Any], Backend, str]]] = {
    "gradium": (gradium_front, GradiumSTT, "/api"),
    "deepgram": (deepgram_front, DeepgramSTT, ""),
    "cartesia": (cartesia_front, CartesiaSTT, ""),
    "elevenlabs": (elevenlabs_front, ElevenLabsSTT, ""),
}


@pytest.mark.parametrize("vendor", sorted(FRONTS))
@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [(503, b"overloaded", {}), (429, b"too many requests", {"Retry-After": "0.1"})],
)
async def test_every_backend_retries_its_transcriptions(
    vendor: str, status: int, body: bytes, headers: dict[str, str], speech_sample: SpeechSample
) -> None:
    make_front, backend, prefix = FRONTS[vendor]
    front = make_front(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words), None, api_keys=[KEY])
    failing = FailFirst(front, count=2, status=status, body=body, headers=headers)
    async with LiveServer(failing) as live, backend(api_key=KEY, base_url=live.url + prefix, reliability=FAST) as stt:
        result = await asyncio.wait_for(stt.transcribe(speech_sample.audio), 10)
    assert result.text == speech_sample.text and failing.hits == 3


@pytest.mark.parametrize("vendor", sorted(FRONTS))
async def test_no_backend_retries_a_wrong_key(vendor: str, speech_sample: SpeechSample) -> None:
    make_front, backend, prefix = FRONTS[vendor]
    counting = FailFirst(make_front(ScriptedSTT(script="hi"), None, api_keys=[KEY]), count=0)
    async with (
        LiveServer(counting) as live,
        backend(api_key="wrong", base_url=live.url + prefix, reliability=FAST) as stt,
    ):
        with pytest.raises(AuthenticationError):
            await asyncio.wait_for(stt.transcribe(speech_sample.audio), 10)
    assert counting.hits == 1


async def test_an_unknown_gradium_voice_is_not_retried_though_gradium_calls_it_1011() -> None:
    counting = FailFirst(gradium_front(None, ScriptedTTS(), api_keys=[KEY]), count=0)
    async with (
        LiveServer(counting) as live,
        GradiumTTS(api_key=KEY, base_url=live.url + "/api", voice="NoSuchVoice00000", reliability=FAST) as tts,
    ):
        with pytest.raises(UnknownVoice, match="NoSuchVoice00000") as caught:
            await tts.synthesize("hello")
    assert caught.value.code == 1011 and counting.hits == 1


async def test_a_backend_with_retries_off_fails_at_once(speech_sample: SpeechSample) -> None:
    counting = FailFirst(deepgram_front(ScriptedSTT(script="hi"), None, api_keys=[KEY]), count=1)
    async with (
        LiveServer(counting) as live,
        DeepgramSTT(api_key=KEY, base_url=live.url, reliability={"retries": 0}) as stt,
    ):
        with pytest.raises(ProviderError):
            await stt.transcribe(speech_sample.audio)
    assert counting.hits == 1


async def test_account_helpers_retry_with_the_default_policy() -> None:
    counting = FailFirst(deepgram_front(None, None, api_keys=[KEY]), count=1, status=502)
    async with LiveServer(counting) as live:
        grant = await asyncio.wait_for(deepgram_token(KEY, base_url=live.url), 10)
    assert grant.token and counting.hits == 2
