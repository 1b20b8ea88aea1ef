"""Fuzzing what the shared transports read from a server: NDJSON bodies cut anywhere (through a real httpx response
streaming the bytes), and ``Retry-After`` headers. Only JSON objects or a ProtocolError come out, in linear time and
bounded memory; a WebSocket message over the size limit is refused, not buffered."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.errors import ProtocolError, SpeechBridgeError
from speechbridge.testing import LiveServer
from speechbridge.testing.fuzz import MAX_MESSAGE_CHARS, hostile_frames, json_objects, load_profile
from speechbridge.transports import DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_MESSAGE_BYTES, iter_ndjson, retry_after_seconds
from speechbridge.websocket import ENGINES, WebSocketClosed, closed_error, connect_websocket

load_profile()

PROVIDER: Final = "fuzz"


async def _pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def _read(pieces: list[bytes], **options: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        response = httpx.Response(200, content=_pieces(pieces))
        return [message async for message in iter_ndjson(response, provider=PROVIDER, **options)]

    return asyncio.run(asyncio.wait_for(collect(), 10))


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    st.lists(json_objects(("type", "text", "audio"), max_leaves=6), max_size=4),
    st.sampled_from((b"\n", b"\r\n", b"\n\n")),
    st.booleans(),
    st.lists(st.integers(0, 5000), max_size=12),
)
def test_ndjson_objects_come_out_whole_however_the_body_is_cut(
    messages: list[dict[str, Any]], newline: bytes, last_newline: bool, cuts: list[int]
) -> None:
    lines = [json.dumps(message).encode() for message in messages]
    body = newline.join(lines) + (newline if last_newline else b"")
    assert _read(_cut(body, cuts)) == [json.loads(line) for line in lines]


@given(st.lists(st.binary(max_size=40) | hostile_frames().map(lambda f: f if isinstance(f, bytes) else f.encode())))
def test_any_body_gives_objects_or_a_protocol_error(pieces: list[bytes]) -> None:
    try:
        messages = _read(pieces)
    except ProtocolError as error:
        assert 0 < len(str(error)) <= MAX_MESSAGE_CHARS
        return
    assert all(isinstance(message, dict) for message in messages)


@pytest.mark.parametrize("ended", [True, False])
def test_a_line_longer_than_the_limit_is_a_protocol_error(ended: bool) -> None:
    line = b'{"text": "' + b"x" * 2000 + b'"}' + (b"\n" if ended else b"")
    with pytest.raises(ProtocolError, match="longer than 1000 bytes"):
        _read([line[:700], line[700:]], max_line_bytes=1000)
    assert _read([line], max_line_bytes=len(line)) == [json.loads(line)]


def test_an_endless_line_stops_at_the_limit_in_bounded_memory() -> None:
    async def endless() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        while True:
            yield b"x" * 65536

    async def read() -> None:
        response = httpx.Response(200, content=endless())
        async for _ in iter_ndjson(response, provider=PROVIDER):
            pass

    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="longer than"):
            asyncio.run(asyncio.wait_for(read(), 10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * DEFAULT_MAX_LINE_BYTES


def test_a_long_line_dribbled_a_byte_at_a_time_is_read_in_linear_time() -> None:
    line = json.dumps({"type": "audio", "audio": "A" * 300_000}).encode() + b"\n"
    started = time.perf_counter()
    assert _read([line[index : index + 1] for index in range(len(line))]) == [json.loads(line)]
    assert time.perf_counter() - started < 10  # quadratic re-splitting took minutes


def test_deeply_nested_lines_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="not a JSON line"):
        _read([b"[" * 100_000 + b"\n"])


@given(
    st.none()
    | st.text(max_size=40)
    | st.sampled_from(("nan", "inf", "-inf", "1e400", "-5", "9" * 5000, "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 99"))
)
def test_retry_after_headers_are_a_wait_or_none(value: str | None) -> None:
    seconds = retry_after_seconds(value)
    assert seconds is None or (isinstance(seconds, float) and seconds >= 0)


# --- WebSocket message size -----------------------------------------------------------------------------------------


async def _send_one_message(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("x" * int(websocket.query_params["size"]))
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.receive_text()


@pytest.mark.parametrize("engine", [engine for engine in ENGINES if importlib.util.find_spec(engine) is not None])
async def test_a_websocket_message_over_the_limit_is_refused_not_buffered(engine: str) -> None:
    app = Starlette(routes=[WebSocketRoute("/", _send_one_message)])
    async with LiveServer(app) as server:
        at_limit = await connect_websocket(f"{server.ws_url}/?size={DEFAULT_MAX_MESSAGE_BYTES}", provider=PROVIDER,
                                           engine=engine)  # fmt: skip
        assert len(await asyncio.wait_for(at_limit.recv(), 10)) == DEFAULT_MAX_MESSAGE_BYTES
        await at_limit.close()
        over = await connect_websocket(f"{server.ws_url}/?size={DEFAULT_MAX_MESSAGE_BYTES + 1}", provider=PROVIDER,
                                       engine=engine)  # fmt: skip
        with pytest.raises(WebSocketClosed) as closed:
            await asyncio.wait_for(over.recv(), 10)
    assert isinstance(closed_error(closed.value, provider=PROVIDER), SpeechBridgeError)
