"""CartesiaSTT: options, audio formats, and behaviour against the front and against a scripted Cartesia wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from speechbridge_cartesia.protocol import WordOut, server_done, server_error, server_flush_done, server_transcript
from speechbridge_cartesia.stt import CartesiaSTT, _batch_file, wire_format_for
from websockets.asyncio.server import ServerConnection, serve

from speechbridge.audio import AudioFormat, PCMAudio, encode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    TransportError,
)
from speechbridge.events import Flushed, Ready, StreamEnded, Transcript, TurnEnded
from speechbridge.testing import SpeechSample
from speechbridge.testing.contract import final_text, recognise, within

Script = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture
async def wire() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    """Start a raw WebSocket server running a script per connection; returns its http:// base URL."""
    servers: list[Any] = []

    async def start(script: Script) -> str:
        server = await serve(script, "127.0.0.1", 0)
        servers.append(server)
        port = next(iter(server.sockets)).getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


# --- options and formats ----------------------------------------------------------------------------------------


def test_options_take_cartesia_spellings_and_are_validated() -> None:
    stt = CartesiaSTT(api_key="k", model_id="ink-whisper-2025-06-04", max_silence_duration_secs=0.4)
    assert stt.settings.model == "ink-whisper-2025-06-04"
    assert stt.settings.stream_query()["max_silence_duration_secs"] == "0.4"
    with pytest.raises(ConfigError, match="ink-whisper"):
        CartesiaSTT(api_key="k", model="nova-3")
    with pytest.raises(ConfigError, match="'en'"):
        CartesiaSTT(api_key="k", language="en-US")
    with pytest.raises(ConfigError) as info:
        CartesiaSTT(api_key="k", endpointing=300)
    assert "endpointing" in str(info.value) and "max_silence_duration_secs" in (info.value.allowed or ())
    with pytest.raises(ConfigError, match="base_url"):
        CartesiaSTT(api_key="k", base_url="api.cartesia.ai")


async def test_a_missing_key_fails_before_connecting() -> None:
    stt = CartesiaSTT()
    with pytest.raises(ConfigError, match="CARTESIA_API_KEY"):
        stt.stream(format="pcm_16000")
    with pytest.raises(ConfigError, match="CARTESIA_API_KEY"):
        await stt.transcribe(PCMAudio(bytes(3200), 16000))


def test_live_audio_goes_as_it_is_when_cartesia_names_it() -> None:
    for spec in ("pcm_16000", "f32_44100", "mulaw_8000", "alaw_8000", "pcm_11025"):
        assert wire_format_for(AudioFormat.parse(spec)) == AudioFormat.parse(spec)
    assert wire_format_for(AudioFormat.parse("pcm_16000x2")) == AudioFormat.pcm16(16000)
    with pytest.raises(AudioFormatError, match="transcribe"):
        wire_format_for(AudioFormat("wav"))


def test_batch_audio_files_go_unchanged_and_raw_audio_is_named() -> None:
    wav = encode(PCMAudio(bytes(3200), 16000), "wav")
    assert _batch_file(wav, AudioFormat("wav")) == (("audio.wav", wav, "audio/wav"), {})
    file, query = _batch_file(bytes(800), AudioFormat("mulaw", 8000))
    assert query == {"encoding": "pcm_mulaw", "sample_rate": 8000} and file[1] == bytes(800)
    file, query = _batch_file(bytes(8), AudioFormat("pcm_s16le", 8000, 2))
    assert query == {"encoding": "pcm_s16le", "sample_rate": 8000} and len(file[1]) == 4
    with pytest.raises(AudioFormatError, match="truncated"):
        _batch_file(bytes(3), AudioFormat.pcm16(16000))


# --- against the front ------------------------------------------------------------------------------------------


async def test_batch_without_word_timestamps_and_with_a_wrong_key(
    scripted_front: Any, speech_sample: SpeechSample
) -> None:
    async with CartesiaSTT(api_key=scripted_front.key, base_url=scripted_front.url, word_timestamps=False) as stt:
        result = await within(stt.transcribe(speech_sample.audio))
    assert result.text == speech_sample.text and result.words == () and result.language == "en"
    async with CartesiaSTT(api_key="wrong", base_url=scripted_front.url) as stt:
        with pytest.raises(AuthenticationError):
            await stt.transcribe(speech_sample.audio)
        with pytest.raises(AuthenticationError):
            async with stt.stream(format="pcm_16000"):
                pass


async def test_a_vendor_final_ends_the_turn_unless_turn_detection_is_off(
    scripted_front: Any, speech_sample: SpeechSample
) -> None:
    audio = speech_sample.audio.data + bytes(speech_sample.audio.format.bytes_for(1.5))
    async with CartesiaSTT(api_key=scripted_front.key, base_url=scripted_front.url) as stt:
        events = await recognise(stt, audio, "pcm_16000")
    async with CartesiaSTT(api_key=scripted_front.key, base_url=scripted_front.url, turn_detection=False) as stt:
        quiet = await recognise(stt, audio, "pcm_16000")
    turns = [event for event in events if isinstance(event, TurnEnded)]
    assert [(turn.text, turn.reason) for turn in turns] == [(speech_sample.text, "vendor")]
    assert events.index(turns[0]) < len(events) - 1
    assert not [event for event in quiet if isinstance(event, TurnEnded)]
    assert final_text(quiet) == final_text(events) == speech_sample.text


# --- against a scripted Cartesia wire ---------------------------------------------------------------------------


async def test_query_headers_deltas_and_finalize(wire: Any) -> None:
    seen: dict[str, Any] = {}

    async def cartesia(socket: ServerConnection) -> None:
        seen["path"], seen["headers"] = socket.request.path, socket.request.headers
        audio = 0
        async for frame in socket:
            if isinstance(frame, bytes):
                audio += len(frame)
                continue
            seen.setdefault("commands", []).append(frame)
            if frame == "finalize":
                await socket.send(
                    json.dumps(server_transcript("Hel", False, [], duration=None, language="en", request_id="r"))
                )
                await socket.send(
                    json.dumps(
                        server_transcript(
                            "Hello", True, [WordOut("Hello", 0.1, 0.4)], duration=0.3, language="en", request_id="r"
                        )
                    )
                )
                await socket.send(
                    json.dumps(server_transcript("", True, [], duration=None, language="en", request_id="r"))
                )
                await socket.send(json.dumps(server_flush_done(request_id="r")))
            elif frame == "close":
                await socket.send(
                    json.dumps(server_transcript(" world.", True, [], duration=None, language="en", request_id="r"))
                )
                await socket.send(json.dumps(server_done(request_id="r")))
        seen["audio"] = audio

    url = await wire(cartesia)
    async with CartesiaSTT(api_key="sk_test", base_url=url, version="2026-08-14", max_silence_duration_secs=0.5) as stt:
        async with stt.stream(format="mulaw_8000") as stream:
            await stream.send_audio(bytes(1000))
            flushed = await within(stream.flush())
            await stream.end()
            events = await within(stream.collect())
    query = parse_qs(urlsplit(seen["path"]).query)
    assert query == {
        "model": ["ink-whisper"],
        "language": ["en"],
        "max_silence_duration_secs": ["0.5"],
        "encoding": ["pcm_mulaw"],
        "sample_rate": ["8000"],
    }
    assert seen["headers"]["Authorization"] == "Bearer sk_test" and seen["headers"]["Cartesia-Version"] == "2026-08-14"
    assert seen["commands"] == ["finalize", "close"]
    assert isinstance(events[0], Ready) and events[0].sample_rate == 8000
    transcripts = [event for event in events if isinstance(event, Transcript)]
    assert [(t.text, t.is_final) for t in transcripts] == [("Hel", False), ("Hello", True), ("world.", True)]
    assert transcripts[1].words[0].start_s == 0.1 and transcripts[1].start_s == 0.1
    assert events.index(flushed) == events.index(transcripts[1]) + 1 and flushed == Flushed(1)
    assert [(e.text, e.reason) for e in events if isinstance(e, TurnEnded)] == [("Hello world.", "vendor")]
    assert isinstance(events[-1], StreamEnded)


async def test_an_access_token_goes_in_the_query(wire: Any) -> None:
    seen: dict[str, Any] = {}

    async def cartesia(socket: ServerConnection) -> None:
        seen["path"], seen["headers"] = socket.request.path, socket.request.headers
        async for frame in socket:
            if frame == "close":
                await socket.send(json.dumps(server_done(request_id="r")))

    url = await wire(cartesia)
    async with CartesiaSTT(token="tok_123", base_url=url) as stt:
        events = await recognise(stt, bytes(3200), "pcm_16000")
    query = parse_qs(urlsplit(seen["path"]).query)
    assert query["access_token"] == ["tok_123"] and query["cartesia_version"] == ["2026-03-01"]
    assert "Authorization" not in seen["headers"] and isinstance(events[-1], StreamEnded)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            server_error("The model is not valid", 400, title="Invalid model", error_code="model_not_found"),
            InvalidRequest,
        ),
        ({"type": "error", "message": "bad key", "code": 401}, AuthenticationError),
        (server_flush_done(request_id="r"), ProtocolError),
        ({"type": "transcript", "text": 5}, ProtocolError),
        (None, TransportError),
    ],
)
async def test_failures_are_typed(wire: Any, reply: dict[str, Any] | None, error: type[Exception]) -> None:
    async def cartesia(socket: ServerConnection) -> None:
        await socket.recv()
        if reply is not None:
            await socket.send(json.dumps(reply))
        await socket.close()

    url = await wire(cartesia)
    async with CartesiaSTT(api_key="k", base_url=url, reliability={"reconnects": 0}) as stt:  # see test_reconnect.py
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(bytes(3200))
            with pytest.raises(error):
                await within(stream.collect())


async def test_a_refused_handshake_is_typed(wire: Any) -> None:
    async def refuse(socket: ServerConnection) -> None:
        await socket.close()

    async def handler(connection: ServerConnection, request: Any) -> Any:
        body = {"error_code": "insufficient_credits", "title": "Payment required", "message": "out of credits"}
        return connection.respond(402, json.dumps(body))

    server = await serve(refuse, "127.0.0.1", 0, process_request=handler)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        async with CartesiaSTT(api_key="k", base_url=f"http://127.0.0.1:{port}") as stt:
            with pytest.raises(Exception) as info:
                async with stt.stream(format="pcm_16000"):
                    pass
        assert type(info.value).__name__ == "QuotaExceeded" and "out of credits" in str(info.value)
    finally:
        server.close()
        await server.wait_closed()
