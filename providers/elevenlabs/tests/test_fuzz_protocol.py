"""Fuzzing the ElevenLabs wire protocol, both directions: Scribe and TTS socket frames, REST bodies and client
messages are read into typed values or refused with typed errors; a hostile client gets an error message and a
1008 close from the front, never a crashed handler."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st
from speechbridge_elevenlabs.protocol import (
    OUTPUT_FORMATS,
    Alignment,
    BatchWord,
    STTServerMessage,
    TTSAudioOut,
    TTSClientMessage,
    TTSErrorOut,
    TTSServerMessage,
    WordJoiner,
    client_audio_chunk,
    client_bos,
    client_close_context,
    client_close_socket,
    client_commit,
    client_flush,
    client_text,
    error_from_close,
    error_from_rest,
    error_from_stt,
    parse_batch_words,
    parse_output_format,
    parse_stt_client_message,
    parse_stt_server_message,
    parse_tts_client_message,
    parse_tts_server_message,
    server_audio,
    server_batch_response,
    server_committed,
    server_is_final,
    server_partial,
    server_rest_error,
    server_session_started,
    server_stt_error,
    server_tts_error,
)
from speechbridge_elevenlabs.server import make_app
from speechbridge_elevenlabs.server import tts as elevenlabs_tts
from speechbridge_elevenlabs.server.app import MAX_BODY_BYTES
from speechbridge_elevenlabs.settings import DEFAULT_VOICE_ID
from websockets.exceptions import ConnectionClosed

from speechbridge.audio import AudioFormat
from speechbridge.errors import SpeechBridgeError
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

ALIGNMENT: Final = Alignment.of_words("Hi there", [("Hi", 0.0, 0.2), ("there", 0.25, 0.6)])
WORDS: Final = [("hi", 0.0, 0.2), ("there", 0.25, 0.6)]
STT_SERVER_EXAMPLES: Final = [
    server_session_started("s", {"sample_rate": 16000}),
    server_partial("hi the"),
    server_committed("hi there"),
    server_committed("hi there", WORDS, language_code="en"),
    server_stt_error("quota_exceeded", "no credits"),
    {"message_type": "warning", "text": "slow"},
]
TTS_SERVER_EXAMPLES: Final = [
    server_audio(b"\x00\x01" * 8, ALIGNMENT, "c"),
    server_audio(b"", None),
    server_is_final("c"),
    server_tts_error("voice_not_found", "no such voice", 1008, "c"),
]
STT_CLIENT_EXAMPLES: Final = [client_audio_chunk(b"\x00" * 32, 16000, previous_text="hi"), client_commit(16000)]
TTS_CLIENT_EXAMPLES: Final = [
    client_bos("c", voice_settings={"stability": 0.5}),
    client_text("Hello there. ", "c"),
    client_flush("c"),
    client_close_context("c"),
    client_close_socket(),
    {"text": " ", "xi_api_key": "k"},
]


def _frames(examples: list[dict[str, Any]], keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    messages = mutated(examples) | json_objects(keys)
    return hostile_frames() | messages.map(json.dumps) | messages.map(lambda m: json.dumps(m).encode())


@given(_frames(STT_SERVER_EXAMPLES, ("message_type", "text", "words", "config", "error")))
def test_scribe_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    message = typed_or_error(parse_stt_server_message, frame, returns=STTServerMessage)
    if hasattr(message, "to_error"):
        check_typed(message.to_error(), SpeechBridgeError)


@given(_frames(TTS_SERVER_EXAMPLES, ("audio", "alignment", "normalizedAlignment", "isFinal", "contextId", "error")))
def test_tts_frames_are_read_or_refused_with_a_typed_error(frame: str | bytes) -> None:
    message = typed_or_error(parse_tts_server_message, frame, returns=TTSServerMessage)
    if isinstance(message, TTSErrorOut):
        check_typed(message.to_error(), SpeechBridgeError)
    elif isinstance(message, TTSAudioOut) and message.alignment is not None:
        joiner = WordJoiner()
        check_typed(joiner.feed(message.alignment) + joiner.finish(), list[tuple[str, float, float]])


@given(mutated([server_batch_response("hi there", WORDS, language_code="en", duration_s=1.0, request_id="r")]))
def test_batch_words_are_read_or_refused(body: dict[str, Any]) -> None:
    typed_or_error(parse_batch_words, body, returns=tuple[BatchWord, ...])


@given(mutated([ALIGNMENT.to_rest()]) | json_values())
def test_rest_alignments_are_read_or_refused(value: Any) -> None:
    typed_or_error(Alignment.from_rest, value, returns=Alignment | None)


@given(_frames(STT_CLIENT_EXAMPLES, ("message_type", "audio_base_64", "commit", "sample_rate")))
def test_scribe_client_frames_are_read_or_refused(frame: str | bytes) -> None:
    typed_or_error(parse_stt_client_message, frame)


@given(_frames(TTS_CLIENT_EXAMPLES, ("text", "context_id", "flush", "close_context", "voice_settings")))
def test_tts_client_frames_are_read_or_refused(frame: str | bytes) -> None:
    typed_or_error(parse_tts_client_message, frame, returns=TTSClientMessage)


@given(st.sampled_from(list(OUTPUT_FORMATS)) | hostile_texts(), st.booleans())
def test_output_formats_are_a_format_or_a_typed_error(name: str, streaming: bool) -> None:
    typed_or_error(parse_output_format, name, streaming=streaming, returns=AudioFormat)


@given(
    st.integers(100, 599) | st.integers(),
    hostile_texts()
    | mutated([server_rest_error("voice_not_found", "no"), {"detail": [{"loc": ["body", "text"], "msg": "x"}]}]).map(
        json.dumps
    ),
)
def test_rest_errors_are_typed(status: int, body: str) -> None:
    check_typed(error_from_rest(status, body), SpeechBridgeError)


@given(st.none() | st.integers(), hostile_texts(), st.none() | hostile_texts())
def test_socket_errors_are_typed(code: int | None, message: str, kind: str | None) -> None:
    check_typed(error_from_close(code, message, kind), SpeechBridgeError)
    check_typed(error_from_stt(kind or "error", message), SpeechBridgeError)


# --- the front, against a hostile client -------------------------------------------------------------------------

KEY: Final = "fuzz-key"
DEEP_FRAMES: Final = ("[" * 100_000, '{"text": ' + "[" * 5000 + "]" * 5000 + "}")
SCRIBE_FRAMES: Final = (
    *DEEP_FRAMES,
    '{"message_type": "input_audio_chunk", "audio_base_64": "!!!"}',
    '{"message_type": "commit"}',
    '{"audio_base_64": 5}',
    '{"audio_base_64": "", "sample_rate": true}',
)
TTS_FRAMES: Final = (
    *DEEP_FRAMES,
    '{"text": "hi", "context_id": ["c"]}',
    '{"voice_settings": "fast", "text": " "}',
    '{"flush": 1e400}',
    '{"close_context": true}',
)
CASES: Final = [("/v1/speech-to-text/realtime", frame) for frame in SCRIBE_FRAMES] + [
    (f"/v1/text-to-speech/{DEFAULT_VOICE_ID}/multi-stream-input?output_format=pcm_16000", frame) for frame in TTS_FRAMES
]


@pytest.mark.parametrize(("path", "frame"), CASES, ids=range(len(CASES)))
async def test_a_hostile_client_gets_an_error_and_a_policy_close(path: str, frame: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        async with websockets.connect(
            server.ws_url + path, additional_headers={"xi-api-key": KEY}, max_size=None
        ) as ws:
            if "realtime" in path:
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["message_type"] == "session_started"
            await ws.send(frame)
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
    assert error.get("message") or error.get("error")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# --- limits -------------------------------------------------------------------------------------------------------

MULTI: Final = f"/v1/text-to-speech/{DEFAULT_VOICE_ID}/multi-stream-input?output_format=pcm_8000"


class GatedStream(ScriptedTTSStream):
    """A backend stream that takes no text until its gate opens."""

    def __init__(self, gate: asyncio.Event, *args: Any) -> None:
        super().__init__(*args)
        self.gate = gate

    async def _send_text(self, text: str) -> None:
        await self.gate.wait()
        await super()._send_text(text)


class FirstStreamGated(ScriptedTTS):
    """Its first stream waits for ``gate``; the others speak at once."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__(ms_per_char=1, gap_ms=0, sample_rate=8000)
        self.gate, self.opened = gate, 0

    def _stream(self, format: Any, settings: Any) -> ScriptedTTSStream:
        self.opened += 1
        if self.opened == 1:
            return GatedStream(self.gate, self.name, format, settings)
        return ScriptedTTSStream(self.name, format, settings)


async def test_a_context_holding_much_text_stops_the_socket_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elevenlabs_tts, "MAX_PENDING_BYTES", 1000)
    gate = asyncio.Event()
    async with LiveServer(make_app(None, FirstStreamGated(gate), api_keys=[KEY])) as server:
        async with websockets.connect(server.ws_url + MULTI, additional_headers={"xi-api-key": KEY}) as ws:
            for _ in range(10):  # 2000 characters for a backend that takes none yet
                await ws.send(json.dumps(client_text("word " * 40, "a")))
            await ws.send(json.dumps({**client_text("hi ", "b"), "flush": True}))  # answered at once, once read
            with pytest.raises(TimeoutError):  # it is not read while context a holds its limit
                await asyncio.wait_for(ws.recv(), 0.5)
            gate.set()
            await ws.send(json.dumps(client_close_socket()))
            finals = set()
            with pytest.raises(ConnectionClosed):
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert "error" not in message, message
                    finals |= {message["contextId"]} if message.get("isFinal") else set()
    assert finals == {"a", "b"} and ws.close_code == 1000


async def test_text_never_flushed_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elevenlabs_tts, "MAX_UNALIGNED_CHARS", 1000)
    async with LiveServer(make_app(None, ScriptedTTS(), api_keys=[KEY])) as server:
        url = server.ws_url + MULTI.replace("multi-stream-input", "stream-input")
        async with websockets.connect(url, additional_headers={"xi-api-key": KEY}) as ws:
            for _ in range(2):  # one word the backend cannot time until it ends: it stays unaligned
                await ws.send(json.dumps(client_text("x" * 600)))
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    assert error["error"] == "max_character_limit_exceeded" and "1000 characters" in error["message"]
    assert ws.close_code == 1008


@pytest.mark.parametrize("path", ["/v1/speech-to-text", f"/v1/text-to-speech/{DEFAULT_VOICE_ID}"])
async def test_a_body_over_the_limit_is_refused_before_it_is_read(path: str) -> None:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as server:
        assert await declared_body_status(server.url, path, MAX_BODY_BYTES + 1, {"xi-api-key": KEY}) == 413
        assert await declared_body_status(server.url, path, 0, {"xi-api-key": KEY}) != 413
