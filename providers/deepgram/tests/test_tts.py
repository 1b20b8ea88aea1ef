"""The Deepgram TTS client against the Deepgram front (tone speaker behind it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from speechbridge_deepgram.server import make_app
from speechbridge_deepgram.tts import DeepgramTTS

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import AuthenticationError, ConfigError
from speechbridge.events import AudioChunk, Flushed, Ready, StreamEnded
from speechbridge.testing import LiveServer, ScriptedTTS
from speechbridge.testing.contract import within

KEY = "tts-test-key"


class Recorder:
    """Wraps an ASGI app and keeps each request's path and query, and each WebSocket's text frames."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        record = {
            "path": scope["path"],
            "query": {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()},
            "texts": [],
        }
        self.requests.append(record)

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "websocket.receive" and message.get("text") is not None:
                record["texts"].append(json.loads(message["text"]))
            return message

        await self.app(scope, recording_receive, send)


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder(make_app(None, ScriptedTTS(), api_keys=[KEY], voices={"aura-2-zeus-en": "square"}))
    async with LiveServer(recorder) as server:
        yield server.url, recorder


@pytest.mark.parametrize(
    ("fmt", "query"),
    [
        ("pcm_16000", {"encoding": "linear16", "sample_rate": "16000", "container": "none"}),
        ("wav_24000", {"encoding": "linear16", "sample_rate": "24000", "container": "wav"}),
        ("mulaw_8000", {"encoding": "mulaw", "sample_rate": "8000", "container": "none"}),
        ("f32_22050", {"encoding": "linear16", "sample_rate": "24000", "container": "none"}),
        ("pcm_44100", {"encoding": "linear16", "sample_rate": "48000", "container": "none"}),
        ("ogg_opus", {"encoding": "opus"}),
    ],
)
async def test_synthesize_asks_for_native_formats_and_converts_the_rest(
    served: Any, fmt: str, query: dict[str, str]
) -> None:
    url, recorder = served
    async with DeepgramTTS(api_key=KEY, base_url=url, speed=1.2) as tts:
        synthesis = await within(tts.synthesize("Hello there friend", format=fmt))
    assert recorder.requests[-1]["path"] == "/v1/speak"
    assert recorder.requests[-1]["query"] == {"model": "aura-2-thalia-en", "speed": "1.2", **query}
    requested = AudioFormat.parse(fmt)
    assert synthesis.format.encoding == requested.encoding
    assert requested.sample_rate in (None, synthesis.format.sample_rate)
    assert decode(synthesis.audio, synthesis.format if synthesis.format.is_raw else None).duration_s > 0.3


async def test_speed_and_voice_reach_the_backend(served: Any) -> None:
    url, _ = served
    async with DeepgramTTS(api_key=KEY, base_url=url) as tts:
        normal = await tts.synthesize("Hello there friend", format="pcm_16000")
        fast = await tts.synthesize("Hello there friend", format="pcm_16000", speed=1.5)
        mapped = await tts.synthesize("Hello there friend", format="pcm_16000", voice="aura-2-zeus-en")
    assert len(fast.audio) < 0.8 * len(normal.audio)
    assert len(mapped.audio) == len(normal.audio) and mapped.audio != normal.audio


async def test_stream_flushes_in_order_and_clear_drops_pending_text(served: Any) -> None:
    url, recorder = served
    async with DeepgramTTS(api_key=KEY, base_url=url) as tts, tts.stream(format="pcm_16000") as stream:
        await stream.send_text("Hello ")
        await stream.send_text("there")
        first = await within(stream.flush())
        await stream.send_text("this will be dropped")
        await within(stream.clear())
        await stream.send_text("Goodbye")
        second = await within(stream.flush())
        await stream.end()
        events = await within(stream.collect())
    assert (first, second) == (Flushed(1), Flushed(2))
    assert isinstance(events[0], Ready) and isinstance(events[-1], StreamEnded)
    assert [e for e in events if isinstance(e, Flushed)] == [first, second]
    types = [message["type"] for message in recorder.requests[-1]["texts"]]
    assert types == ["Speak", "Speak", "Flush", "Speak", "Clear", "Speak", "Flush", "Close"]
    assert recorder.requests[-1]["query"] == {
        "model": "aura-2-thalia-en",
        "encoding": "linear16",
        "sample_rate": "16000",
    }
    audio = b"".join(e.data for e in events if isinstance(e, AudioChunk))
    assert 0.5 < len(audio) / 32000 < 3.0


async def test_stream_in_a_rate_deepgram_lacks_is_resampled(served: Any) -> None:
    url, recorder = served
    async with DeepgramTTS(api_key=KEY, base_url=url) as tts, tts.stream(format="pcm_22050") as stream:
        await stream.send_text("Hello there")
        await stream.end()
        events = await within(stream.collect())
    assert recorder.requests[-1]["query"]["sample_rate"] == "24000"
    assert {e.format for e in events if isinstance(e, AudioChunk)} == {AudioFormat.pcm16(22050)}


@pytest.mark.parametrize("voice", ["thalia", "aura-2-thalia", "AURA-2-THALIA-EN"])
def test_voice_must_be_an_aura_model(voice: str) -> None:
    with pytest.raises(ConfigError, match="aura-2-thalia-en"):
        DeepgramTTS(api_key=KEY, voice=voice)
    assert DeepgramTTS(api_key=KEY, model="aura-asteria-en").settings.voice == "aura-asteria-en"
    with pytest.raises(ConfigError, match="speed"):
        DeepgramTTS(api_key=KEY, speed=3)


async def test_bad_key_is_an_authentication_error(served: Any) -> None:
    url, _ = served
    async with DeepgramTTS(api_key="wrong", base_url=url) as tts:
        with pytest.raises(AuthenticationError):
            await tts.synthesize("Hello")
        with pytest.raises(AuthenticationError):
            async with tts.stream(format="pcm_16000"):
                pass


async def test_voices_are_accepted_by_the_settings() -> None:
    tts = DeepgramTTS(api_key=KEY)
    voices = await tts.voices()
    assert voices[0].id == "aura-2-thalia-en" and all(DeepgramTTS(api_key=KEY, voice=v.id) for v in voices)
