"""The ElevenLabs TTS client against the ElevenLabs front: formats, word timings, contexts, auth and tokens."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
import websockets
from speechbridge_elevenlabs.account import create_token
from speechbridge_elevenlabs.protocol import Alignment, WordJoiner
from speechbridge_elevenlabs.server import make_app
from speechbridge_elevenlabs.tts import ElevenLabsTTS, output_format_for

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import AudioFormatError, AuthenticationError, ConfigError, UnsupportedFeature
from speechbridge.events import AudioChunk, Flushed, WordTiming
from speechbridge.testing import ScriptedTTS
from speechbridge.testing.contract import within

TEXT = "Hello there. The quick brown fox"


def test_output_format_asks_for_what_elevenlabs_makes() -> None:
    assert output_format_for(AudioFormat.pcm16(22050), streaming=True) == "pcm_22050"
    assert output_format_for(AudioFormat("mulaw", 8000), streaming=True) == "ulaw_8000"
    assert output_format_for(AudioFormat("mp3"), streaming=False) == "mp3_44100_128"
    assert output_format_for(AudioFormat("mp3", 24000), streaming=False) == "mp3_24000_48"
    assert output_format_for(AudioFormat("wav"), streaming=False) == "pcm_24000"
    assert output_format_for(AudioFormat("pcm_f32le", 12000), streaming=True) == "pcm_16000"
    assert output_format_for(AudioFormat("mulaw", 16000), streaming=True) == "pcm_16000"


def test_voice_settings_and_speed_are_validated_and_sent() -> None:
    tts = ElevenLabsTTS(api_key="k", voice_id="v1", model_id="eleven_v3", voice_settings={"stability": 0.3}, speed=1.1)
    body = tts.settings.rest_body("hi")
    assert body == {"text": "hi", "model_id": "eleven_v3", "voice_settings": {"stability": 0.3, "speed": 1.1}}
    assert tts.settings.voice == "v1"
    with pytest.raises(ConfigError, match="out of range"):
        ElevenLabsTTS(api_key="k", voice_settings={"similarity_boost": 2})
    with pytest.raises(ConfigError, match="unknown voice_settings key") as info:
        ElevenLabsTTS(api_key="k", voice_settings={"loudness": 1})
    assert "use_speaker_boost" in (info.value.allowed or ())
    with pytest.raises(ConfigError, match="speed"):
        ElevenLabsTTS(api_key="k", speed=2.0)
    with pytest.raises(ConfigError, match="output_format"):
        ElevenLabsTTS(api_key="k", output_format="mp3_8000_8")
    with pytest.raises(ConfigError, match="chunk_length_schedule"):
        ElevenLabsTTS(api_key="k", chunk_length_schedule=[10])


async def test_socket_options_are_refused_by_one_shot_synthesis() -> None:
    tts = ElevenLabsTTS(api_key="k", base_url="http://127.0.0.1:9", auto_mode=True, inactivity_timeout=60)
    with pytest.raises(UnsupportedFeature, match="auto_mode, inactivity_timeout"):
        await tts.synthesize(TEXT)
    query = tts.stream(format="pcm_16000").url
    assert "auto_mode=true" in query and "inactivity_timeout=60" in query


def test_a_container_output_format_cannot_be_streamed() -> None:
    tts = ElevenLabsTTS(api_key="k", output_format="mp3_44100_128")
    with pytest.raises(AudioFormatError, match="mp3_44100_128"):
        tts.stream(format="pcm_16000")


async def test_synthesize_with_word_timings_and_conversion(scripted_front: Any) -> None:
    async with ElevenLabsTTS(api_key=scripted_front.key, base_url=scripted_front.url, voice="square") as tts:
        synthesis = await within(tts.synthesize(TEXT, format="pcm_16000"))
        assert synthesis.format == AudioFormat.pcm16(16000)
        assert [word.text for word in synthesis.words] == TEXT.split()
        assert synthesis.words[-1].end_s == pytest.approx(len(synthesis.audio) / 32000, abs=0.01)
        resampled = await within(tts.synthesize(TEXT, format="pcm_12000"))
        assert resampled.format == AudioFormat.pcm16(12000)
        assert len(resampled.audio) / 24000 == pytest.approx(synthesis.duration_s, abs=0.01)
        plain = await within(tts.synthesize(TEXT, format="mp3", word_timestamps=False))
        assert plain.words == () and plain.format == AudioFormat("mp3", 44100)
        assert decode(plain.audio).duration_s == pytest.approx(synthesis.duration_s, abs=0.1)


async def test_stream_word_timings_land_on_the_stream_timeline(scripted_front: Any) -> None:
    async with ElevenLabsTTS(api_key=scripted_front.key, base_url=scripted_front.url) as tts:
        batch = await within(tts.synthesize(TEXT, format="pcm_16000"))
        async with tts.stream(format="pcm_16000") as stream:
            for piece in ("Hello there. The qu", "ick brown fox"):
                await stream.send_text(piece)
            flushed = await within(stream.flush())
            await stream.end()
            events = await within(stream.collect())
    timings = [event for event in events if isinstance(event, WordTiming)]
    assert [timing.text for timing in timings] == TEXT.split()
    for streamed, whole in zip(timings, batch.words, strict=True):
        assert streamed.start_s == pytest.approx(whole.start_s, abs=0.002)
        assert streamed.end_s == pytest.approx(whole.end_s, abs=0.002)
    assert events.index(timings[-1]) < events.index(flushed)
    audio = b"".join(event.data for event in events if isinstance(event, AudioChunk))
    assert len(audio) == pytest.approx(len(batch.audio), abs=64)  # resampled in chunks, not at once


async def test_multiplexed_streams_share_one_socket(scripted_front: Any) -> None:
    front = scripted_front.front

    async def speak(tts: ElevenLabsTTS, text: str) -> list[Any]:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text(text)
            await stream.end()
            return await within(stream.collect())

    for multiplex, sockets in ((True, 1), (False, 3)):
        before = front.connections
        async with ElevenLabsTTS(api_key=scripted_front.key, base_url=scripted_front.url, multiplex=multiplex) as tts:
            spoken = await asyncio.gather(*(speak(tts, f"stream number {n}") for n in range(3)))
        assert front.connections - before == sockets
        for n, events in enumerate(spoken):
            assert [e.text for e in events if isinstance(e, WordTiming)] == ["stream", "number", str(n)]


async def test_wrong_key_and_tokens_on_the_socket(scripted_front: Any) -> None:
    async with ElevenLabsTTS(api_key="wrong", base_url=scripted_front.url) as tts:
        with pytest.raises(AuthenticationError):
            await tts.synthesize(TEXT)
        with pytest.raises(AuthenticationError):
            async with tts.stream(format="pcm_16000") as stream:
                await stream.send_text(TEXT)
                await stream.end()
                await within(stream.collect())
    token = await create_token(scripted_front.key, "tts_websocket", base_url=scripted_front.url)
    async with ElevenLabsTTS(token=token.token, base_url=scripted_front.url) as tts:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text(TEXT)
            await stream.end()
            assert any(isinstance(event, AudioChunk) for event in await within(stream.collect()))
        with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
            await tts.synthesize(TEXT)


async def test_front_allows_five_contexts_per_socket(scripted_front: Any) -> None:
    url = (
        f"{scripted_front.url.replace('http', 'ws')}/v1/text-to-speech/sine/multi-stream-input?output_format=pcm_16000"
    )
    async with websockets.connect(url, additional_headers={"xi-api-key": scripted_front.key}) as websocket:
        for n in range(6):
            await websocket.send(json.dumps({"text": " ", "context_id": f"c{n}"}))
        while True:
            message = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            if "error" in message:
                break
        assert message["error"] == "max_active_conversations" and message["code"] == 1008


async def test_front_single_context_socket_takes_the_key_in_the_bos(scripted_front: Any) -> None:
    url = f"{scripted_front.url.replace('http', 'ws')}/v1/text-to-speech/sine/stream-input?output_format=pcm_16000"
    joiner, audio, offset = WordJoiner(), b"", 0.0
    async with websockets.connect(url) as websocket:
        for text in (" ", "Hello ", "world. ", ""):
            message = {"text": text, "xi_api_key": scripted_front.key} if text == " " else {"text": text}
            await websocket.send(json.dumps(message))
        words = []
        async for frame in websocket:
            message = json.loads(frame)
            chunk = base64.b64decode(message.get("audio") or "")
            alignment = Alignment.from_socket(message.get("alignment"))
            if alignment is not None:
                words += joiner.feed(alignment.shifted(offset))
            audio, offset = audio + chunk, offset + len(chunk) / 32000
            if message.get("isFinal"):
                break
    assert [word for word, _, _ in words + joiner.finish()] == ["Hello", "world."]
    assert audio


async def test_flush_without_text_is_confirmed_at_once(scripted_front: Any) -> None:
    async with ElevenLabsTTS(api_key=scripted_front.key, base_url=scripted_front.url) as tts:
        async with tts.stream(format="pcm_16000") as stream:
            assert isinstance(await within(stream.flush()), Flushed)
            await stream.end()
            await within(stream.collect())


async def test_front_routes_by_path_whatever_the_voice_is_called() -> None:
    app = make_app(None, ScriptedTTS(), api_keys=["k"], voice_map={"stream": None, "with-timestamps": "square"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front") as client:
        for voice in ("stream", "with-timestamps"):
            answer = await client.post(
                f"/v1/text-to-speech/{voice}/stream/with-timestamps?output_format=pcm_16000",
                headers={"xi-api-key": "k"},
                json={"text": "Hello there."},
            )
            lines = [json.loads(line) for line in answer.text.splitlines()]
            assert "".join(lines[0]["alignment"]["characters"]) == "Hello there."
        plain = await client.post("/v1/text-to-speech/stream?output_format=wav_16000", headers={"xi-api-key": "k"},
                                  json={"text": "Hello."})  # fmt: skip
        assert plain.headers["content-type"] == "audio/wav" and plain.content[:4] == b"RIFF"
        missing = await client.post("/v1/text-to-speech/stream", headers={"xi-api-key": "k"}, json={})
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "text"]
