"""The Deepgram STT client against the Deepgram front (scripted recogniser behind it), and against small scripted
servers for what the front never does (dropping, in-band errors)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from speechbridge_deepgram.account import create_token
from speechbridge_deepgram.server import make_app
from speechbridge_deepgram.stt import DeepgramSTT
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from speechbridge.audio import AudioFormat, encode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    TransportError,
)
from speechbridge.events import Flushed, Ready, SpeechStarted, StreamEnded, Transcript, TurnEnded
from speechbridge.testing import LiveServer, ScriptedSTT, SpeechSample, word_overlap
from speechbridge.testing.contract import final_text, within

KEY = "stt-test-key"


class Recorder:
    """Wraps an ASGI app and keeps what each WebSocket client sent: path, query, headers and text frames."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sockets: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        record = {
            "path": scope["path"],
            "query": parse_qs(scope["query_string"].decode()),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "texts": [],
            "binary_bytes": 0,
        }
        self.sockets.append(record)

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "websocket.receive":
                if message.get("text") is not None:
                    record["texts"].append(json.loads(message["text"])["type"])
                else:
                    record["binary_bytes"] += len(message.get("bytes") or b"")
            return message

        await self.app(scope, recording_receive, send)


@pytest.fixture
async def served(speech_sample: SpeechSample) -> AsyncIterator[tuple[LiveServer, Recorder]]:
    recorder = Recorder(make_app(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words), None, api_keys=[KEY]))
    async with LiveServer(recorder) as server:
        yield server, recorder


async def _recognise(stt: DeepgramSTT, audio: bytes, fmt: str, **options: Any) -> list[Any]:
    async with stt.stream(format=fmt, **options) as stream:
        await stream.send_audio(audio)
        await stream.end()
        return await within(stream.collect())


async def test_stream_sends_deepgram_query_and_token_and_maps_events(served: Any, speech_sample: SpeechSample) -> None:
    server, recorder = served
    audio = speech_sample.audio.data + bytes(speech_sample.audio.format.bytes_for(1.5))
    async with DeepgramSTT(
        api_key=KEY, base_url=server.url, language="en-US", keyterms=["Gradium"], utterance_end_ms=1000
    ) as stt:
        events = await _recognise(stt, audio, "pcm_16000")
    record = recorder.sockets[-1]
    assert record["path"] == "/v1/listen" and record["headers"]["authorization"] == f"Token {KEY}"
    assert {k: v[0] for k, v in record["query"].items()} == {
        "model": "nova-3",
        "language": "en-US",
        "keyterm": "Gradium",
        "interim_results": "true",
        "endpointing": "300",
        "vad_events": "true",
        "utterance_end_ms": "1000",
        "encoding": "linear16",
        "sample_rate": "16000",
        "channels": "1",
    }
    assert record["texts"] == ["CloseStream"] and record["binary_bytes"] == len(audio)
    assert isinstance(events[0], Ready) and isinstance(events[-1], StreamEnded)
    assert events[0].request_id and events[0].sample_rate == 16000
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert any(isinstance(e, Transcript) and not e.is_final for e in events)
    turns = [e for e in events if isinstance(e, TurnEnded)]
    assert turns and turns[0].reason == "vendor" and word_overlap(speech_sample.words, turns[0].text) >= 0.9
    assert word_overlap(speech_sample.words, final_text(events)) >= 0.9


@pytest.mark.parametrize(
    ("fmt", "options", "encoding", "rate"),
    [
        ("mulaw_8000", {}, "mulaw", "8000"),
        ("f32_16000", {}, "linear16", "16000"),
        ("pcm_16000", {"encoding": "mulaw", "sample_rate": 8000}, "mulaw", "8000"),
    ],
)
async def test_input_is_converted_to_the_wire_encoding(
    served: Any, speech_sample: SpeechSample, fmt: str, options: dict[str, Any], encoding: str, rate: str
) -> None:
    server, recorder = served
    async with DeepgramSTT(api_key=KEY, base_url=server.url) as stt:
        events = await _recognise(stt, encode(speech_sample.audio, fmt), fmt, **options)
    assert recorder.sockets[-1]["query"]["encoding"] == [encoding]
    assert recorder.sockets[-1]["query"]["sample_rate"] == [rate]
    assert word_overlap(speech_sample.words, final_text(events)) >= 0.5


async def test_flush_sends_finalize_and_returns_after_the_text(served: Any, speech_sample: SpeechSample) -> None:
    server, recorder = served
    async with DeepgramSTT(api_key=KEY, base_url=server.url, interim_results=False) as stt:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(speech_sample.audio.data)
            flushed = await within(stream.flush())
            await stream.end()
            events = await within(stream.collect())
    assert recorder.sockets[-1]["texts"] == ["Finalize", "CloseStream"]
    assert not any(isinstance(e, Transcript) and not e.is_final for e in events)
    assert flushed == Flushed(1) and flushed in events
    before = events[: events.index(flushed)]
    assert word_overlap(speech_sample.words, final_text(before)) >= 0.9


async def test_keep_alive_is_sent_when_idle(served: Any, speech_sample: SpeechSample) -> None:
    server, recorder = served
    async with DeepgramSTT(api_key=KEY, base_url=server.url, keepalive_s=0.5) as stt:
        async with stt.stream(format="pcm_16000") as stream:
            await asyncio.sleep(1.2)
            await stream.end()
            await within(stream.collect())
    assert recorder.sockets[-1]["texts"].count("KeepAlive") == 2


async def test_batch_sends_raw_audio_with_its_encoding(served: Any, speech_sample: SpeechSample) -> None:
    server, _ = served
    async with DeepgramSTT(api_key=KEY, base_url=server.url) as stt:
        for fmt in ("pcm_16000", "mulaw_8000", "alaw_8000", "wav", "flac"):
            result = await within(stt.transcribe(encode(speech_sample.audio, fmt), format=fmt))
            assert result.is_final and word_overlap(speech_sample.words, result.text) >= 0.5, fmt
        assert result.words and result.start_s is not None


async def test_access_token_from_grant_is_sent_as_bearer(served: Any, speech_sample: SpeechSample) -> None:
    server, recorder = served
    grant = await create_token(KEY, ttl_seconds=60, base_url=server.url)
    assert grant.token not in repr(grant) and grant.subprotocols() == ["bearer", grant.token]
    async with DeepgramSTT(access_token=grant.token, base_url=server.url) as stt:
        assert (await stt.transcribe(speech_sample.audio)).text
        await _recognise(stt, speech_sample.audio.data, "pcm_16000")
    assert recorder.sockets[-1]["headers"]["authorization"] == f"Bearer {grant.token}"


async def test_bad_credentials_are_authentication_errors(served: Any, speech_sample: SpeechSample) -> None:
    server, _ = served
    for credentials in ({"api_key": "wrong"}, {"access_token": "forged"}):
        async with DeepgramSTT(base_url=server.url, **credentials) as stt:
            with pytest.raises(AuthenticationError) as info:
                await stt.transcribe(speech_sample.audio)
            assert "wrong" not in str(info.value) and info.value.code == "INVALID_AUTH"
            with pytest.raises(AuthenticationError):
                async with stt.stream(format="pcm_16000"):
                    pass
    with pytest.raises(AuthenticationError):
        await create_token("wrong", base_url=server.url)
    with pytest.raises(ConfigError, match="DEEPGRAM_API_KEY"):
        await DeepgramSTT(base_url=server.url).transcribe(speech_sample.audio)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"endpointing": 5}, "endpointing"),
        ({"endpointing": True}, "endpointing"),
        ({"utterance_end_ms": 500}, "utterance_end_ms"),
        ({"interim_results": False, "utterance_end_ms": 1000}, "interim_results=True"),
        ({"encoding": "speex"}, "linear16"),
        ({"sample_rate": 12345}, "sample_rate"),
        ({"language": "english!"}, "BCP-47"),
        ({"keyterm": [""]}, "keyterm"),
        ({"diarize": True}, "diarize"),
        ({"base_url": "ftp://x"}, "base_url"),
    ],
)
def test_settings_are_validated_by_value(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        DeepgramSTT(api_key=KEY, **options)
    if "diarize" in options:
        assert "endpointing" in info.value.allowed


def test_vendor_spellings_are_aliases() -> None:
    stt = DeepgramSTT(api_key=KEY, keyterms="speechbridge", vad=False, endpointing=False, utterance_end_ms=None)
    assert stt.settings.keyterm == ("speechbridge",) and stt.settings.vad_events is False
    assert ("endpointing", "false") in stt.settings.stream_query()


def _scripted_server(script: Any) -> Starlette:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await script(websocket)

    return Starlette(routes=[WebSocketRoute("/v1/listen", endpoint)])


@pytest.mark.parametrize(
    ("script", "error", "match"),
    [
        (lambda ws: ws.close(1011, "NET-0001: no audio received"), ProviderError, "NET-0001"),
        (lambda ws: ws.close(1008, "DATA-0000: bad audio"), AudioFormatError, "could not decode"),
        (lambda ws: ws.close(1000), TransportError, "before CloseStream"),
        (
            lambda ws: ws.send_text('{"type": "Error", "variant": "SchemaError", "description": "nope"}'),
            InvalidRequest,
            "nope",
        ),
        (lambda ws: ws.send_bytes(b"\x00"), ProtocolError, "binary"),
    ],
)
async def test_server_failures_end_the_stream_with_typed_errors(
    script: Any, error: type[Exception], match: str
) -> None:
    async def run(websocket: WebSocket) -> None:
        await script(websocket)
        await asyncio.sleep(0.2)

    no_reconnects = {"reconnects": 0}  # reconnects: test_reconnect.py
    async with (
        LiveServer(_scripted_server(run)) as server,
        DeepgramSTT(api_key=KEY, base_url=server.url, reliability=no_reconnects) as stt,
    ):
        async with stt.stream(format="pcm_16000") as stream:
            with pytest.raises(error, match=match):
                await within(stream.collect())
            with pytest.raises(error):
                await stream.send_audio(b"\0\0")


def test_wire_format_of_containers_is_the_container() -> None:
    from speechbridge_deepgram.stt import wire_format_for

    settings = DeepgramSTT(api_key=KEY).settings
    assert wire_format_for(AudioFormat("wav", 16000), settings) == AudioFormat("wav", 16000)


async def test_utterance_end_ends_a_turn_that_speech_final_missed() -> None:
    from speechbridge_deepgram import protocol

    async def run(websocket: WebSocket) -> None:
        def results(text: str, is_final: bool) -> str:
            message = protocol.Results(text, is_final, start=0.5, duration=0.5)
            return json.dumps(protocol.server_results(message, request_id="r", model="nova-3"))

        await websocket.send_text(results("hel", False))
        await websocket.send_text(results("hello", True))
        await websocket.send_text(json.dumps(protocol.server_utterance_end(1.25)))
        await websocket.send_text(json.dumps(protocol.server_utterance_end(2.5)))
        assert json.loads(await websocket.receive_text()) == {"type": "CloseStream"}
        await websocket.send_text(json.dumps(protocol.server_metadata("r", 3.0, "nova-3", "t")))
        await websocket.close(1000)

    async with LiveServer(_scripted_server(run)) as server, DeepgramSTT(api_key=KEY, base_url=server.url) as stt:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.end()
            events = await within(stream.collect())
    assert events[1:] == [
        Transcript("hel", False, 0.5, 1.0, confidence=1.0),
        Transcript("hello", True, 0.5, 1.0, confidence=1.0),
        TurnEnded("hello", "vendor", 1.25),
        StreamEnded(),
    ]
