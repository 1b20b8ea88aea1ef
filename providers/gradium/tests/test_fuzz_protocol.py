"""Fuzzing the Gradium wire protocol, both directions: every input is read into a typed message or refused with a
typed error, and a hostile client gets an error frame and a close from the front, never a crashed handler."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st
from speechbridge_gradium.protocol import (
    AudioIn,
    ClientMessage,
    EndOfStreamIn,
    ServerMessage,
    Setup,
    client_audio,
    client_end_of_stream,
    client_flush,
    client_setup,
    client_text,
    error_from_code,
    error_from_rest,
    parse_client_message,
    parse_server_message,
    read_json_config,
    server_audio,
    server_end_of_stream,
    server_end_text,
    server_error,
    server_flushed,
    server_step,
    server_stt_ready,
    server_text,
    server_tts_ready,
    with_request,
)
from speechbridge_gradium.server import audio_in, make_app
from speechbridge_gradium.server.app import MAX_BODY_BYTES
from speechbridge_gradium.server.channels import MAX_REQUESTS_PER_SOCKET, NDJSONChannel
from speechbridge_gradium.server.requests import MAX_PENDING_BYTES
from speechbridge_gradium.server.stt import STTRequest
from websockets.exceptions import ConnectionClosed

from speechbridge.errors import SpeechBridgeError
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS
from speechbridge.testing.fuzz import (
    check_typed,
    declared_body_status,
    hostile_frames,
    json_objects,
    json_values,
    load_profile,
    mutated,
    typed_or_error,
)
from speechbridge.testing.scripted import ScriptedSTTStream

load_profile()

FRONT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024  # uvicorn's ws_max_size, which LiveServer and serve() keep

SERVER_EXAMPLES: Final = [
    server_stt_ready("req", "default", 24000, 10),
    server_tts_ready("req", "default", 48000),
    server_text("hello", 0.5, 0.9),
    server_end_text(1.2),
    server_step(3, (0.1, 0.2, 0.3, 0.4)),
    server_flushed(7),
    server_audio(b"\x00\x01" * 8, 0.0, 0.08),
    server_end_of_stream(),
    server_error("bad key", 1008),
    with_request(server_text("hi", 0.1), "r1"),
    {"type": "ready", "delay_in_tokens": 8, "sample_rate": 24000},
    {"type": "need_more_text", "client_req_id": 3},
]
CLIENT_EXAMPLES: Final = [
    client_setup(Setup(kind="stt", input_format="pcm", json_config={"language": "en"}, client_req_id="a")),
    client_setup(Setup(kind="tts", output_format="wav", voice_id="v", close_ws_on_eos=False)),
    {"type": "setup", "model_name": "default", "input_format": "pcm", "json_config": '{"delay_in_frames": 8}'},
    client_audio(b"\x00" * 32, "a"),
    client_text("Hello there.", "b"),
    client_flush(3),
    client_end_of_stream("a"),
]
SERVER_TYPES: Final = ("ready", "text", "end_text", "step", "flushed", "audio", "end_of_stream", "error")
CLIENT_TYPES: Final = ("setup", "audio", "text", "flush", "end_of_stream")


def _frames(examples: list[dict[str, Any]], types: tuple[str, ...]) -> st.SearchStrategy[Any]:
    typed = json_objects(("type", "client_req_id", "audio", "text", "vad", "start_s", "stop_s")).map(
        lambda message: message
    )
    made_up = st.builds(lambda kind, body: {**body, "type": kind}, st.sampled_from(types), typed)
    messages = mutated(examples) | made_up
    return hostile_frames() | messages.map(json.dumps) | messages.map(lambda m: json.dumps(m).encode())


@given(_frames(SERVER_EXAMPLES, SERVER_TYPES))
def test_server_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    message = typed_or_error(parse_server_message, frame, returns=ServerMessage)
    if hasattr(message, "to_error"):
        check_typed(message.to_error(), SpeechBridgeError)


@given(mutated(SERVER_EXAMPLES) | json_objects(("type",)).map(lambda m: {"type": "step", **m}))
def test_ndjson_lines_already_parsed_are_read_or_refused(message: dict[str, Any]) -> None:
    typed_or_error(parse_server_message, message, returns=ServerMessage)


@given(_frames(CLIENT_EXAMPLES, CLIENT_TYPES))
def test_client_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    typed_or_error(parse_client_message, frame, returns=ClientMessage)


@given(json_values() | st.text(max_size=40) | st.sampled_from(("{", "[1]", '{"a": NaN}', "[" * 5000)))
def test_json_config_is_an_object_or_a_typed_error(value: Any) -> None:
    typed_or_error(read_json_config, value, returns=dict[str, Any])


@given(
    st.integers(100, 599) | st.integers(),
    st.text(max_size=80)
    | st.builds(
        lambda code, reason: f"error from server {code}: {reason}", st.text("0123456789", min_size=1), st.text()
    )
    | json_values().map(json.dumps),
)
def test_rest_errors_are_typed(status: int, body: str) -> None:
    check_typed(error_from_rest(status, body), SpeechBridgeError)


@given(st.none() | st.integers(), st.text(max_size=80))
def test_error_codes_are_typed(code: int | None, message: str) -> None:
    check_typed(error_from_code(code, message), SpeechBridgeError)


# --- the front, against a hostile client -------------------------------------------------------------------------

HOSTILE_FRAMES: Final = [
    "[" * 100_000,
    '{"type": "setup", "input_format": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"type": "audio", "audio": NaN}',
    '{"type": "setup", "json_config": "' + "[" * 3000 + '"}',
    '{"type": ["setup"]}',
    b"\xff\xfe binary",
    '{"type": "setup", "client_req_id": 1e400}',
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)))
async def test_a_hostile_client_gets_an_error_and_a_close(frame: str | bytes) -> None:
    app = make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=["key"])
    async with LiveServer(app) as server:
        url = server.ws_url + "/api/speech/asr"
        async with websockets.connect(url, additional_headers={"x-api-key": "key"}, max_size=None) as ws:
            await ws.send(frame)
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    assert error["type"] == "error" and error["message"]
    assert ws.close_code in (1003, 1008)


# --- limits -------------------------------------------------------------------------------------------------------


class GatedStream(ScriptedSTTStream):
    """A backend stream that takes no audio until its gate opens, then only counts it."""

    def __init__(self, gate: asyncio.Event, *args: Any) -> None:
        super().__init__(*args)
        self.gate, self.heard = gate, 0

    async def _send_frame(self, frame: bytes) -> None:
        await self.gate.wait()
        self.heard += len(frame)


class GatedSTT(ScriptedSTT):
    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__(script="hello", sample_rate=24000)
        self.gate, self.streams = gate, list[GatedStream]()

    def _stream(self, format: Any, settings: Any) -> GatedStream:
        self.streams.append(GatedStream(self.gate, self.name, format, settings))
        return self.streams[-1]


async def test_a_request_holds_at_most_max_pending_bytes_of_audio_its_backend_has_not_taken() -> None:
    gate, chunk, channel = asyncio.Event(), AudioIn(bytes(65536)), NDJSONChannel(None)
    backend = GatedSTT(gate)
    request = STTRequest(channel, Setup(kind="stt", input_format="pcm"), backend)
    request.start()
    accepted = 0

    async def client() -> None:
        nonlocal accepted
        for _ in range(200):  # 12.5 MiB, three times the limit
            request.put(chunk)
            accepted += len(chunk.audio)
            await request.room()

    sending = asyncio.create_task(client())
    await asyncio.sleep(0.3)
    assert not sending.done() and accepted <= MAX_PENDING_BYTES + 2 * len(chunk.audio)
    gate.set()
    await asyncio.wait_for(sending, 10)
    request.put(EndOfStreamIn())
    replies = await asyncio.wait_for(_lines(channel), 10)
    assert json.loads(replies[-1])["type"] == "end_of_stream"
    assert backend.streams[0].heard == accepted == 200 * len(chunk.audio)  # slowed down, nothing lost
    await request.cancel()


async def _lines(channel: NDJSONChannel) -> list[Any]:
    return [line async for line in channel.lines()]


async def test_a_request_over_does_not_hold_the_socket_up() -> None:
    request = STTRequest(NDJSONChannel(None), Setup(kind="stt", input_format="pcm"), GatedSTT(asyncio.Event()))
    await request.cancel()
    for _ in range(100):  # after the end, input is dropped: nothing to wait for, nothing kept
        request.put(AudioIn(bytes(65536)))
        await asyncio.wait_for(request.room(), 1)


async def test_a_socket_holds_at_most_max_requests_at_once() -> None:
    app = make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=["key"])
    async with LiveServer(app) as server:
        url = server.ws_url + "/api/speech/asr"
        async with websockets.connect(url, additional_headers={"x-api-key": "key"}) as ws:
            for index in range(MAX_REQUESTS_PER_SOCKET + 1):
                setup = client_setup(Setup(kind="stt", input_format="pcm", client_req_id=str(index)))
                await ws.send(json.dumps({**setup, "close_ws_on_eos": False}))
            replies = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(MAX_REQUESTS_PER_SOCKET + 1)]
            refused = [reply for reply in replies if reply["type"] == "error"]
            assert [reply["client_req_id"] for reply in refused] == [str(MAX_REQUESTS_PER_SOCKET)]
            assert "concurrency limit" in refused[0]["message"]
            await ws.send(json.dumps(client_end_of_stream("0")))  # the socket carries on for the others
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "end_of_stream"


async def test_audio_decoded_whole_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_in, "MAX_WHOLE_INPUT_BYTES", 10_000)
    app = make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=["key"])
    async with LiveServer(app) as server:
        url = server.ws_url + "/api/speech/asr"
        async with websockets.connect(url, additional_headers={"x-api-key": "key"}) as ws:
            await ws.send(json.dumps(client_setup(Setup(kind="stt", input_format="opus"))))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
            for _ in range(3):
                await ws.send(json.dumps(client_audio(b"OggS" + bytes(5000))))
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    assert error["type"] == "error" and "more than 10000 bytes" in error["message"]
    assert ws.close_code == 1008


@pytest.mark.parametrize("path", ["/api/post/speech/asr", "/api/post/speech/tts"])
async def test_a_body_over_the_limit_is_refused_before_it_is_read(path: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=["key"])) as server:
        assert await declared_body_status(server.url, path, MAX_BODY_BYTES + 1, {"x-api-key": "key"}) == 413
        assert await declared_body_status(server.url, path, 0, {"x-api-key": "key"}) != 413


async def test_a_websocket_message_over_the_servers_limit_is_refused() -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=["key"])) as server:
        url = server.ws_url + "/api/speech/asr"
        async with websockets.connect(url, additional_headers={"x-api-key": "key"}) as ws:
            await ws.send("x" * (FRONT_MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1009
