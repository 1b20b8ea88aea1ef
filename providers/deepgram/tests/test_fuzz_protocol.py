"""Fuzzing the Deepgram wire protocol, both directions: every frame, REST body and query is read into a typed value
or refused with a typed error, and a hostile client gets an in-band ``Error`` or a Deepgram close, never a crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st
from speechbridge_deepgram.protocol import (
    ClientMessage,
    Results,
    ServerMessage,
    client_clear,
    client_close,
    client_close_stream,
    client_finalize,
    client_flush,
    client_keep_alive,
    client_speak,
    error_from_close,
    error_from_rest,
    listen_response,
    parse_client_message,
    parse_listen_response,
    parse_server_message,
    rest_error_body,
    server_cleared,
    server_error,
    server_flushed,
    server_metadata,
    server_results,
    server_speak_metadata,
    server_speech_started,
    server_utterance_end,
    speak_format,
    stt_wire_format,
)
from speechbridge_deepgram.server import make_app
from speechbridge_deepgram.server.app import MAX_BODY_BYTES
from websockets.exceptions import ConnectionClosed

from speechbridge.audio import AudioFormat
from speechbridge.errors import SpeechBridgeError
from speechbridge.events import Word
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

load_profile()

WORDS: Final = (Word("Hello", 0.1, 0.4, 0.9), Word("world.", 0.5, 0.9))
SERVER_EXAMPLES: Final = [
    server_results(Results("Hello world.", True, True, False, 0.0, 1.0, WORDS, 0.9), request_id="r", model="nova-3"),
    server_results(Results("Hel", False), request_id="r", model="nova-3"),
    server_utterance_end(1.5),
    server_speech_started(0.2),
    server_metadata("r", 2.0, "nova-3", "2025-01-01T00:00:00.000Z"),
    server_error("could not parse", "{"),
    server_speak_metadata("r", "aura-2-thalia-en"),
    server_flushed(3),
    server_cleared(4),
    {"type": "Warning", "description": "slow down", "code": "W1"},
]
CLIENT_EXAMPLES: Final = [
    client_keep_alive(),
    client_finalize(),
    client_close_stream(),
    client_speak("Hello there."),
    client_flush(),
    client_clear(),
    client_close(),
    {"type": "Configure", "keyterms": ["speechbridge"]},
    {"type": "Finalize", "channel": 0},
]
SERVER_TYPES: Final = ("Results", "UtteranceEnd", "SpeechStarted", "Metadata", "Error", "Flushed", "Cleared", "Warning")
LISTEN_BODY: Final = listen_response(
    "Hello world.", WORDS, request_id="r", duration=1.0, model="nova-3", created="now", language="en"
)


def _frames(examples: list[dict[str, Any]], types: tuple[str, ...]) -> st.SearchStrategy[Any]:
    made_up = st.builds(lambda kind, body: {**body, "type": kind}, st.sampled_from(types), json_objects(("channel",)))
    messages = mutated(examples) | made_up
    return hostile_frames() | messages.map(json.dumps) | messages.map(lambda m: json.dumps(m).encode())


@given(_frames(SERVER_EXAMPLES, SERVER_TYPES))
def test_server_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    typed_or_error(parse_server_message, frame, returns=ServerMessage)


@given(mutated([LISTEN_BODY]) | json_values())
def test_listen_answers_are_read_or_refused(body: Any) -> None:
    typed_or_error(parse_listen_response, body)


@given(_frames(CLIENT_EXAMPLES, ("Speak", "Finalize", "Configure", "KeepAlive", "Close")))
def test_client_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    typed_or_error(parse_client_message, frame, returns=ClientMessage)


QUERY_KEYS: Final = ("encoding", "sample_rate", "container")
QUERY_VALUES: Final = ("linear16", "mulaw", "alaw", "mp3", "opus", "flac", "wav", "none", "16000", "8000", "-1", "0")


@given(
    st.dictionaries(
        st.sampled_from(QUERY_KEYS) | st.text(max_size=8),
        st.sampled_from(QUERY_VALUES) | st.text(max_size=12) | st.just("9" * 5000),
        max_size=4,
    ),
    st.booleans(),
)
def test_speak_queries_name_a_format_or_a_typed_error(params: dict[str, str], websocket: bool) -> None:
    typed_or_error(speak_format, params, websocket=websocket, returns=AudioFormat)


@given(st.sampled_from(("linear16", "mulaw", "alaw")) | st.text(max_size=10), st.integers())
def test_listen_formats_are_a_format_or_a_typed_error(encoding: str, sample_rate: int) -> None:
    typed_or_error(stt_wire_format, encoding, sample_rate, returns=AudioFormat)


@given(
    st.integers(100, 599) | st.integers(),
    hostile_texts() | mutated([rest_error_body(402, "no credits", "r")]).map(json.dumps),
)
def test_rest_errors_are_typed(status: int, body: str) -> None:
    check_typed(error_from_rest(status, body), SpeechBridgeError)


@given(st.none() | st.integers(), st.text(max_size=80))
def test_close_codes_are_typed(code: int | None, reason: str) -> None:
    check_typed(error_from_close(code, reason), SpeechBridgeError)


# --- the front, against a hostile client -------------------------------------------------------------------------

KEY: Final = "fuzz-key"
AUTH: Final = {"Authorization": f"Token {KEY}"}
HOSTILE_FRAMES: Final = [
    "[" * 100_000,
    '{"type": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"type": "Speak", "text": NaN}',
    '{"type": "Finalize", "channel": 1e400',
    '{"type": {"nested": true}}',
    "\udcff not JSON",
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)))
async def test_listen_answers_a_hostile_frame_in_band_and_carries_on(frame: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        url = server.ws_url + "/v1/listen?encoding=linear16&sample_rate=16000"
        async with websockets.connect(url, additional_headers=AUTH, max_size=None) as ws:
            await ws.send(frame.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps(client_close_stream()))
            last = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert error["type"] == "Error" and error["description"]
    assert last["type"] == "Metadata"


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)))
async def test_speak_closes_on_a_hostile_frame_with_a_data_error(frame: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        async with websockets.connect(server.ws_url + "/v1/speak", additional_headers=AUTH, max_size=None) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "Metadata"
            await ws.send(frame.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason.startswith("DATA-0000")


# --- limits -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/listen", "/v1/speak", "/v1/auth/grant"])
async def test_a_body_over_the_limit_is_refused_before_it_is_read(path: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        assert await declared_body_status(server.url, path, MAX_BODY_BYTES + 1, AUTH) == 413
        assert await declared_body_status(server.url, path, 0, AUTH) != 413
