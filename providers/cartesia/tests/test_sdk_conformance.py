"""Cartesia's own Python SDK (cartesia 4.2.0) against the Cartesia front: batch and streaming STT, REST, SSE and
WebSocket TTS, and access tokens, all as a Cartesia user writes them (clients.md §6)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from speechbridge.audio import encode
from speechbridge.testing import SpeechSample

cartesia = pytest.importorskip("cartesia")


@pytest.fixture
async def client(scripted_front: Any) -> Any:
    async with cartesia.AsyncCartesia(
        api_key=scripted_front.key,
        base_url=scripted_front.url,
        websocket_base_url=scripted_front.url.replace("http", "ws", 1),
        max_retries=0,
    ) as sdk:
        yield sdk


async def test_transcribe_a_wav_file_with_word_timestamps(client: Any, speech_sample: SpeechSample) -> None:
    wav = encode(speech_sample.audio, "wav")
    result = await client.stt.transcribe(
        file=("a.wav", wav, "audio/wav"), model="ink-whisper", language="en", timestamp_granularities=["word"]
    )
    assert result.text == speech_sample.text
    assert [word.word for word in result.words] == list(speech_sample.words)
    assert all(0 <= word.start <= word.end <= speech_sample.audio.duration_s for word in result.words)


async def test_transcribe_raw_audio_named_in_the_query(client: Any, speech_sample: SpeechSample) -> None:
    result = await client.stt.transcribe(
        file=("a.raw", speech_sample.audio.data, "application/octet-stream"),
        model="ink-whisper",
        encoding="pcm_s16le",
        sample_rate=16000,
    )
    assert result.text == speech_sample.text and not result.words


async def test_stream_audio_finalize_then_close(client: Any, speech_sample: SpeechSample) -> None:
    audio = speech_sample.audio
    async with client.stt.manual_finalize.websocket(
        model="ink-whisper", encoding="pcm_s16le", sample_rate=16000, language="en"
    ) as connection:
        step = audio.format.bytes_for(0.1)
        for start in range(0, len(audio.data), step):
            await connection.send_raw(audio.data[start : start + step])
        await connection.send_raw("finalize")
        events = []
        while not events or events[-1].type != "flush_done":
            events.append(await connection.recv())
        await connection.send_raw("close")
        while events[-1].type != "done":
            events.append(await connection.recv())
    finals = [event for event in events if event.type == "transcript" and event.is_final]
    assert "".join(event.text for event in finals) == speech_sample.text
    assert [event.type for event in events].count("flush_done") == 1
    assert any(event.type == "transcript" and not event.is_final for event in events)


async def test_generate_bytes(client: Any) -> None:
    response = await client.tts.generate(
        model_id="sonic-3",
        transcript="Hello there",
        voice={"mode": "id", "id": "sine"},
        output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
        language="en",
    )
    audio = await response.read()
    assert len(audio) > 16000 * 2 * 0.2 and len(audio) % 2 == 0


async def test_generate_sse_with_timestamps(client: Any) -> None:
    stream = await client.tts.generate_sse(
        model_id="sonic-3",
        transcript="Hello there",
        voice="sine",
        output_format={"container": "raw", "encoding": "pcm_f32le", "sample_rate": 24000},
        add_timestamps=True,
    )
    events = [event async for event in stream]
    audio = b"".join(base64.b64decode(event.data) for event in events if event.type == "chunk")
    words = [word for event in events if event.type == "timestamps" for word in event.word_timestamps.words]
    assert len(audio) > 24000 * 4 * 0.2 and len(audio) % 4 == 0
    assert words == ["Hello", "there"] and events[-1].type == "done"


async def test_websocket_context_push_flush_and_no_more_inputs(client: Any) -> None:
    async with client.tts.websocket_connect() as connection:
        context = connection.context(
            model_id="sonic-3",
            voice={"mode": "id", "id": "a0e99841-438c-4a64-b679-ae501e7d6091"},
            output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
            add_timestamps=True,
        )
        await context.push("Hello, ")
        await context.push("world.", flush=True)
        await context.no_more_inputs()
        events = [event async for event in context.receive()]
    types = [event.type for event in events]
    assert types[-1] == "done" and types.count("flush_done") == 1
    audio = b"".join(base64.b64decode(event.data) for event in events if event.type == "chunk")
    assert len(audio) > 16000 * 2 * 0.2
    words = [word for event in events if event.type == "timestamps" for word in event.word_timestamps.words]
    assert words == ["Hello,", "world."]


async def test_websocket_unknown_voice_is_a_context_error(client: Any) -> None:
    async with client.tts.websocket_connect() as connection:
        context = connection.context(
            model_id="sonic-3",
            voice={"mode": "id", "id": "no-such-voice"},
            output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
        )
        await context.push("Hello", continue_=False)
        events = [event async for event in context.receive()]
    assert events[-1].type == "error" and events[-1].status_code == 404


async def test_access_token_then_use_it(scripted_front: Any, client: Any) -> None:
    token = await client.access_token.create(grants={"tts": True, "stt": False}, expires_in=60)
    async with cartesia.AsyncCartesia(token=token.token, base_url=scripted_front.url, max_retries=0) as browser:
        response = await browser.tts.generate(
            model_id="sonic-3",
            transcript="Hi",
            voice="sine",
            output_format={"container": "wav", "encoding": "pcm_s16le", "sample_rate": 16000},
        )
        assert (await response.read())[:4] == b"RIFF"
        with pytest.raises(cartesia.PermissionDeniedError):
            await browser.stt.transcribe(file=("a.wav", b"RIFF", "audio/wav"), model="ink-whisper")


async def test_a_wrong_key_is_refused(scripted_front: Any) -> None:
    async with cartesia.AsyncCartesia(api_key="wrong", base_url=scripted_front.url, max_retries=0) as sdk:
        with pytest.raises(cartesia.AuthenticationError):
            await sdk.tts.generate(
                model_id="sonic-3",
                transcript="Hi",
                voice="sine",
                output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
            )
