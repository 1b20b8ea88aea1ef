"""CartesiaTTS: options, output formats, and behaviour against the front and against a scripted Cartesia wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from speechbridge_cartesia.account import create_token
from speechbridge_cartesia.protocol import (
    OutputFormat,
    WordOut,
    server_chunk,
    server_done,
    server_error,
    server_flush_done,
    server_timestamps,
    sse_event,
)
from speechbridge_cartesia.settings import DEFAULT_VOICE_ID, CartesiaTTSSettings
from speechbridge_cartesia.stt import CartesiaSTT
from speechbridge_cartesia.tts import CartesiaTTS, output_format_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProviderError,
    StreamClosed,
    TransportError,
    UnknownVoice,
)
from speechbridge.events import AudioChunk, Flushed, Ready, StreamEnded, WordTiming
from speechbridge.testing import SpeechSample
from speechbridge.testing.contract import within
from speechbridge.testing.servers import LiveServer

Script = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture
async def wire() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    """Start a raw WebSocket server running a script per connection; returns its http:// base URL."""
    servers: list[Any] = []

    async def start(script: Script) -> str:
        server = await serve(script, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


# --- options and formats ----------------------------------------------------------------------------------------


def test_cartesia_option_spellings_are_aliases_validated_by_value() -> None:
    tts = CartesiaTTS(
        api_key="k",
        **{"voice.id": "v", "model_id": "sonic-3", "output_format.encoding": "pcm_f32le",
           "output_format.sample_rate": 44100, "generation_config.speed": 1.2},
    )  # fmt: skip
    assert (tts.settings.voice, tts.settings.encoding, tts.settings.sample_rate) == ("v", "pcm_f32le", 44100)
    assert tts.settings.generation_config() == {"speed": 1.2}
    with pytest.raises(ConfigError, match="44100"):
        CartesiaTTS(api_key="k", sample_rate=11025)
    with pytest.raises(ConfigError, match="pcm_s16le"):
        CartesiaTTS(api_key="k", encoding="pcm_s24le")
    with pytest.raises(ConfigError, match=r"0\.6 to 1\.5"):
        CartesiaTTS(api_key="k", speed=3)
    with pytest.raises(ConfigError) as info:
        CartesiaTTS(api_key="k", stability=0.5)
    assert "stability" in str(info.value) and "voice" in (info.value.allowed or ())


@pytest.mark.parametrize(
    ("wanted", "raw_only", "asked"),
    [
        ("pcm_16000", True, OutputFormat("raw", "pcm_s16le", 16000)),
        ("f32_44100", True, OutputFormat("raw", "pcm_f32le", 44100)),
        ("mulaw_8000", True, OutputFormat("raw", "pcm_mulaw", 8000)),
        ("pcm_11025", True, OutputFormat("raw", "pcm_s16le", 16000)),
        ("pcm_96000", True, OutputFormat("raw", "pcm_s16le", 48000)),
        ("wav", False, OutputFormat("wav", "pcm_s16le", 24000)),
        ("wav_16000", True, OutputFormat("raw", "pcm_s16le", 16000)),
        ("mp3", False, OutputFormat("mp3", "pcm_s16le", 24000)),
        ("flac", False, OutputFormat("raw", "pcm_s16le", 24000)),
    ],
)
def test_the_output_format_asked_of_cartesia(wanted: str, raw_only: bool, asked: OutputFormat) -> None:
    assert output_format_for(AudioFormat.parse(wanted), CartesiaTTSSettings(), raw_only=raw_only) == asked


def test_encoding_and_sample_rate_settings_choose_the_wire_format() -> None:
    settings = CartesiaTTSSettings(encoding="pcm_f32le", sample_rate=48000)
    assert output_format_for(AudioFormat.pcm16(16000), settings, raw_only=True) == OutputFormat(
        "raw", "pcm_f32le", 48000
    )
    with pytest.raises(AudioFormatError, match="mono"):
        output_format_for(AudioFormat.parse("pcm_16000x2"), CartesiaTTSSettings(), raw_only=True)


# --- against the front ------------------------------------------------------------------------------------------


async def test_bytes_and_sse_give_the_same_audio_and_speed_reaches_the_voice(scripted_front: Any) -> None:
    base = {"api_key": scripted_front.key, "base_url": scripted_front.url}
    async with CartesiaTTS(**base, word_timestamps=False) as plain, CartesiaTTS(**base) as timed:
        without = await within(plain.synthesize("Hello there", format="pcm_16000"))
        with_words = await within(timed.synthesize("Hello there", format="pcm_16000"))
        faster = await within(timed.synthesize("Hello there", format="pcm_16000", speed=1.5))
        converted = await within(timed.synthesize("Hello there", format="f32_11025"))
    assert without.audio == with_words.audio and without.words == ()
    assert [word.text for word in with_words.words] == ["Hello", "there"]
    assert len(faster.audio) < 0.8 * len(with_words.audio)
    assert converted.format == AudioFormat("pcm_f32le", 11025)
    assert abs(decode(converted.audio, converted.format).duration_s - with_words.duration_s) < 0.01


async def test_an_unknown_voice_is_a_config_error_naming_it(scripted_front: Any) -> None:
    async with CartesiaTTS(api_key=scripted_front.key, base_url=scripted_front.url, voice="nobody") as tts:
        with pytest.raises(UnknownVoice, match="nobody") as info:
            await tts.synthesize("Hello")
        assert isinstance(info.value, ConfigError) and isinstance(info.value, InvalidRequest)
        with pytest.raises(UnknownVoice):
            async with tts.stream(format="pcm_16000") as stream:
                await stream.send_text("Hello")
                await within(stream.collect())


async def test_voices_are_listed_and_each_speaks(scripted_front: Any) -> None:
    async with CartesiaTTS(api_key=scripted_front.key, base_url=scripted_front.url) as tts:
        voices = await within(tts.voices())
        assert [voice.id for voice in voices] == [DEFAULT_VOICE_ID, "sine", "square"]
        for voice in voices:
            assert (await within(tts.synthesize("Hi", voice=voice.id))).audio


async def test_leaving_a_multiplexed_stream_cancels_its_context_and_keeps_the_socket(scripted_front: Any) -> None:
    async with CartesiaTTS(api_key=scripted_front.key, base_url=scripted_front.url, multiplex=True) as tts:
        async with tts.stream(format="pcm_16000") as first:
            await first.send_text("a long text that is left before it is spoken")
        shared = tts._shared
        assert shared is not None and shared.usable and shared.contexts == 0
        async with tts.stream(format="pcm_16000") as second:
            await second.send_text("Hello.")
            await second.end()
            events = await within(second.collect())
        assert tts._shared is shared and isinstance(events[-1], StreamEnded)
        with pytest.raises(StreamClosed):
            await first.send_text("too late")


async def test_access_tokens_are_minted_and_scoped(scripted_front: Any, speech_sample: SpeechSample) -> None:
    token = await within(create_token(scripted_front.key, stt=False, base_url=scripted_front.url))
    assert token.token not in repr(token)
    async with CartesiaTTS(token=token.token, base_url=scripted_front.url) as tts:
        assert (await within(tts.synthesize("Hi"))).audio
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text("Hi")
            await stream.end()
            assert isinstance((await within(stream.collect()))[-1], StreamEnded)
    async with CartesiaSTT(token=token.token, base_url=scripted_front.url) as stt:
        with pytest.raises(AuthenticationError, match="stt"):
            await stt.transcribe(speech_sample.audio)
    with pytest.raises(AuthenticationError):
        await create_token("wrong", base_url=scripted_front.url)
    with pytest.raises(ConfigError, match="3600"):
        await create_token("k", expires_in=7200)


# --- against a scripted Cartesia wire ---------------------------------------------------------------------------


async def test_requests_on_the_wire_and_events_back(wire: Any) -> None:
    sent: list[dict[str, Any]] = []

    async def cartesia(socket: ServerConnection) -> None:
        async for frame in socket:
            request = json.loads(frame)
            sent.append(request)
            context = request["context_id"]
            if request["transcript"]:
                await socket.send(json.dumps(server_chunk(bytes(3200), context, 1)))
                words = [WordOut(request["transcript"].strip(), 0.0, 0.1)]
                await socket.send(json.dumps(server_timestamps(words, context)))
            if request.get("flush"):
                await socket.send(json.dumps(server_flush_done(context_id=context, flush_id=1)))
            if not request["continue"]:
                await socket.send(json.dumps(server_done(context_id=context)))

    url = await wire(cartesia)
    async with CartesiaTTS(api_key="k", base_url=url, voice="v-1", language="en", volume=1.5) as tts:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text("Hel")
            flushed = await within(stream.flush())
            await stream.send_text("lo ")
            await stream.end()
            events = await within(stream.collect())
    context = stream.context_id
    common = {"context_id": context, "model_id": "sonic-3", "voice": {"mode": "id", "id": "v-1"}, "language": "en",
              "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
              "add_timestamps": True, "generation_config": {"volume": 1.5}}  # fmt: skip
    assert sent == [
        {**common, "transcript": "Hel", "continue": True},
        {**common, "transcript": "", "continue": True, "flush": True},
        {**common, "transcript": "lo ", "continue": True},
        {**common, "transcript": "", "continue": False},
    ]
    assert isinstance(events[0], Ready) and events[0].request_id == context
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["Ready", "AudioChunk", "WordTiming", "Flushed", "AudioChunk", "WordTiming", "StreamEnded"]
    assert flushed == Flushed(1) and events[3] == flushed
    assert [event.text for event in events if isinstance(event, WordTiming)] == ["Hel", "lo"]
    assert all(event.format == AudioFormat.pcm16(16000) for event in events if isinstance(event, AudioChunk))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"error_code": "voice_not_found", "message": "Voice not found", "status_code": 404}, UnknownVoice),
        ({"error": "Invalid model: x", "status_code": 400}, InvalidRequest),
        ({"message": "overloaded", "status_code": 500}, ProviderError),
        (None, TransportError),
    ],
)
async def test_context_failures_are_typed(wire: Any, reply: dict[str, Any] | None, error: type[Exception]) -> None:
    async def cartesia(socket: ServerConnection) -> None:
        request = json.loads(await socket.recv())
        if reply is not None:
            await socket.send(json.dumps({**server_error("x", 400, context_id=request["context_id"]), **reply}))
        await socket.close()

    url = await wire(cartesia)
    async with CartesiaTTS(api_key="k", base_url=url) as tts:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text("Hello")
            with pytest.raises(error):
                await within(stream.collect())


async def test_an_sse_body_whose_last_event_has_no_blank_line_still_completes() -> None:
    """Some servers end the body right after the final ``data:`` line; its ``done`` must not be lost."""

    async def tts_sse(request: Request) -> Response:
        body = sse_event(server_chunk(bytes(3200), None)) + b"event: done\ndata: " + json.dumps(server_done()).encode()
        return Response(body, media_type="text/event-stream")

    async with LiveServer(Starlette(routes=[Route("/tts/sse", tts_sse, methods=["POST"])])) as server:
        async with CartesiaTTS(api_key="test-key-123", base_url=server.url) as tts:
            result = await within(tts.synthesize("Hello", format="pcm_16000"))
    assert result.audio == bytes(3200) and result.format == AudioFormat.pcm16(16000)
