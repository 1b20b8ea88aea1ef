"""Fuzzing the Cartesia wire protocol, both directions: frames, SSE streams cut anywhere, REST bodies and client
requests are read into typed values or refused with typed errors; a hostile client gets an ``error`` message and
the socket carries on (TTS) or closes with 1008 (STT), never a crashed handler."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st
from speechbridge_cartesia.protocol import (
    MAX_SSE_EVENT_BYTES,
    GenerationRequest,
    OutputFormat,
    ServerMessage,
    SSEDecoder,
    TranscriptOut,
    WordOut,
    client_cancel,
    error_from_rest,
    error_from_status,
    parse_batch_transcript,
    parse_server_message,
    parse_stt_command,
    parse_tts_message,
    read_voice_id,
    server_batch_transcript,
    server_chunk,
    server_done,
    server_error,
    server_flush_done,
    server_timestamps,
    server_transcript,
    sse_event,
)
from speechbridge_cartesia.server import make_app
from speechbridge_cartesia.server import tts as cartesia_tts
from speechbridge_cartesia.server.app import MAX_BODY_BYTES
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from speechbridge.errors import ProtocolError, SpeechBridgeError
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS
from speechbridge.testing.fuzz import (
    check_typed,
    declared_body_status,
    hostile_frames,
    hostile_texts,
    json_objects,
    json_values,
    load_profile,
    mutated,
    typed_or_error,
)
from speechbridge.testing.scripted import ScriptedTTSStream

load_profile()

WORDS: Final = [WordOut("hello", 0.1, 0.4), WordOut("world", 0.5, 0.9)]
SERVER_EXAMPLES: Final = [
    server_transcript("hello world", True, WORDS, duration=1.0, language="en", request_id="r"),
    server_transcript("hel", False, [], duration=None, language=None, request_id="r"),
    server_flush_done(request_id="r"),
    server_flush_done(context_id="c", flush_id=2),
    server_done(context_id="c"),
    server_chunk(b"\x00\x01" * 8, "c", 1),
    server_timestamps(WORDS, "c"),
    server_error("voice not found", 404, error_code="voice_not_found", context_id="c"),
]
GENERATION: Final = GenerationRequest(
    "Hello there.", "voice-1", output_format=OutputFormat("raw", "pcm_s16le", 16000), context_id="c", continue_=True
).to_json()
CLIENT_EXAMPLES: Final = [
    GENERATION,
    {**GENERATION, "voice": "voice-2", "flush": True, "add_timestamps": True, "generation_config": {"speed": 1.2}},
    {**GENERATION, "output_format": {"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}},
    {"context_id": "c", "transcript": " more", "continue": False},
    client_cancel("c"),
]
SERVER_TYPES: Final = ("transcript", "flush_done", "done", "chunk", "timestamps", "error")


def _frames(examples: list[dict[str, Any]], keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    messages = mutated(examples) | json_objects(keys)
    return hostile_frames() | messages.map(json.dumps) | messages.map(lambda m: json.dumps(m).encode())


@given(_frames(SERVER_EXAMPLES, ("type", "context_id", "words", "data", "word_timestamps", "status_code")))
def test_server_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    message = typed_or_error(parse_server_message, frame, returns=ServerMessage)
    if hasattr(message, "to_error"):
        check_typed(message.to_error(), SpeechBridgeError)


@given(
    mutated([server_batch_transcript("hi there", WORDS, duration=1.2, language="en", request_id="r")]) | json_values()
)
def test_batch_answers_are_read_or_refused(body: Any) -> None:
    typed_or_error(parse_batch_transcript, body, returns=TranscriptOut)


@given(_frames(CLIENT_EXAMPLES, ("transcript", "voice", "context_id", "output_format", "continue", "cancel")))
def test_tts_requests_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    started = {"c": GenerationRequest.from_json(GENERATION)}
    typed_or_error(parse_tts_message, frame, started)
    typed_or_error(parse_tts_message, frame)


@given(json_values() | mutated([{"mode": "id", "id": "v"}, {"container": "raw", "encoding": "pcm_f32le"}]))
def test_voices_and_output_formats_are_read_or_refused(value: Any) -> None:
    typed_or_error(read_voice_id, value)
    typed_or_error(OutputFormat.from_json, value, returns=OutputFormat)


@given(hostile_texts() | st.sampled_from(("finalize", "close", "done", '{"type": "close"}', ' {"type": 1}')))
def test_stt_commands_are_read_or_refused(text: str) -> None:
    typed_or_error(parse_stt_command, text)


@given(st.integers(100, 599) | st.integers(), hostile_texts() | mutated([server_error("no", 402)]).map(json.dumps))
def test_rest_errors_are_typed(status: int, body: str) -> None:
    check_typed(error_from_rest(status, body), SpeechBridgeError)
    check_typed(error_from_status(status, body, body[:20] or None), SpeechBridgeError)


# --- SSE ----------------------------------------------------------------------------------------------------------


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    st.lists(mutated(SERVER_EXAMPLES) | json_objects(("type",)), min_size=1, max_size=3),
    st.sampled_from((b"\n", b"\r\n", b"\r")),
    st.lists(st.integers(0, 10_000), max_size=12),
)
def test_sse_events_are_the_same_however_the_stream_is_cut(
    messages: list[dict[str, Any]], newline: bytes, cuts: list[int]
) -> None:
    data = b"".join(sse_event({**message, "type": "x"}).replace(b"\n", newline) for message in messages)
    decoder = SSEDecoder()
    events = [event for piece in _cut(data, cuts) for event in decoder.feed(piece)] + decoder.close()
    assert events == [json.loads(json.dumps({**message, "type": "x"})) for message in messages]


@given(st.lists(st.binary(max_size=40) | hostile_frames().map(lambda f: f if isinstance(f, bytes) else f.encode())))
def test_any_sse_bytes_give_objects_or_a_protocol_error(pieces: list[bytes]) -> None:
    decoder = SSEDecoder()
    try:
        events = [event for piece in pieces for event in decoder.feed(piece)] + decoder.close()
    except ProtocolError as error:
        assert len(str(error)) < 1000
        return
    check_typed(events, list[dict[str, Any]])


def test_an_sse_event_longer_than_the_limit_is_a_protocol_error() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: " + b"[" * (MAX_SSE_EVENT_BYTES - 100) + b"\n")
    with pytest.raises(ProtocolError, match="longer than"):
        decoder.feed(b"data: " + b"]" * 200)  # no end of line in sight: the buffer would grow without bound


def test_a_line_dribbled_a_byte_at_a_time_is_read_in_linear_time() -> None:
    data = sse_event(server_chunk(bytes(150_000), "c"))
    decoder = SSEDecoder()
    events = [event for start in range(len(data)) for event in decoder.feed(data[start : start + 1])]
    assert [event["type"] for event in events] == ["chunk"]


# --- the front, against a hostile client -------------------------------------------------------------------------

KEY: Final = "fuzz-key"
HOSTILE_FRAMES: Final = [
    "[" * 100_000,
    '{"context_id": "c", "transcript": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"context_id": "c", "transcript": "hi", "voice": {"mode": "id", "id": "v"}, "output_format": '
    '{"container": "raw", "encoding": ["pcm_s16le"], "sample_rate": 16000}}',
    '{"context_id": ' + "[" * 900 + "]" * 900 + ', "transcript": NaN}',
    '{"cancel": true, "context_id": null}',
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)))
async def test_tts_socket_answers_a_hostile_frame_with_an_error_and_carries_on(frame: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        async with connect(f"{server.ws_url}/tts/websocket?api_key={KEY}", max_size=None) as ws:
            await ws.send(frame)
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps(client_cancel("other")))
            await ws.send(frame)
            again = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert error["type"] == again["type"] == "error" and error["status_code"] == 400 and error["message"]


@pytest.mark.parametrize("frame", ["[" * 100_000, '{"type": ' + "[" * 5000 + "]" * 5000 + "}", "finalize!"])
async def test_stt_socket_closes_on_a_hostile_command_with_an_error(frame: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        url = f"{server.ws_url}/stt/websocket?api_key={KEY}&encoding=pcm_s16le&sample_rate=16000"
        async with connect(url, max_size=None) as ws:
            await ws.send(frame)
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
    assert error["type"] == "error" and error["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# --- limits -------------------------------------------------------------------------------------------------------


class GatedStream(ScriptedTTSStream):
    """A provider stream that takes no text until its gate opens."""

    def __init__(self, gate: asyncio.Event, *args: Any) -> None:
        super().__init__(*args)
        self.gate = gate

    async def _send_text(self, text: str) -> None:
        await self.gate.wait()
        await super()._send_text(text)


class GatedTTS(ScriptedTTS):
    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__(ms_per_char=1, gap_ms=0, sample_rate=8000)
        self.gate = gate

    def _stream(self, format: Any, settings: Any) -> GatedStream:
        return GatedStream(self.gate, self.name, format, settings)


def _request(context: str, transcript: str, **fields: Any) -> str:
    return json.dumps({**GENERATION, "context_id": context, "transcript": transcript, "voice": "sine", **fields})


async def test_a_context_holding_much_text_stops_the_socket_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cartesia_tts, "MAX_PENDING_BYTES", 1000)
    gate = asyncio.Event()
    async with LiveServer(make_app(ScriptedSTT(script="hello"), GatedTTS(gate), api_keys=[KEY])) as server:
        async with connect(f"{server.ws_url}/tts/websocket?api_key={KEY}", max_size=None) as ws:
            for _ in range(10):  # 2000 characters for a provider that takes none yet
                await ws.send(_request("a", "word " * 40))
            await ws.send(_request("b", "", flush=True))  # answered at once, once it is read
            with pytest.raises(TimeoutError):  # it is not read while context a holds its limit
                await asyncio.wait_for(ws.recv(), 0.5)
            gate.set()
            for context in ("a", "b"):
                await ws.send(_request(context, "", **{"continue": False}))
            done: set[str] = set()
            while done != {"a", "b"}:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert message["type"] != "error", message
                done |= {message["context_id"]} if message["type"] == "done" else set()


async def test_a_socket_holds_at_most_max_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cartesia_tts, "MAX_CONTEXTS", 3)
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        async with connect(f"{server.ws_url}/tts/websocket?api_key={KEY}", max_size=None) as ws:
            for context in ("a", "b", "c", "d"):
                await ws.send(_request(context, ""))
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert error["type"] == "error" and error["context_id"] == "d" and error["status_code"] == 429
            assert error["error_code"] == "concurrency_limited"
            await ws.send(json.dumps(client_cancel("a")))
            await ws.send(_request("d", "hi ", flush=True))  # room again, on the same socket
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["context_id"] == "d"


@pytest.mark.parametrize("path", ["/stt", "/tts/bytes", "/tts/sse", "/access-token"])
async def test_a_body_over_the_limit_is_refused_before_it_is_read(path: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        assert await declared_body_status(server.url, path, MAX_BODY_BYTES + 1, {"x-api-key": KEY}) == 413
        assert await declared_body_status(server.url, path, 0, {"x-api-key": KEY}) != 413
