"""The official ``gradium`` SDK (0.6.4) as a client of the speechbridge Gradium front.

If Gradium's own client works against the front, the front is faithful. Every call runs under a timeout: the SDK's
buffered methods read until the socket closes and hang on a server that does not close after ``end_of_stream``.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
import pytest_asyncio
from speechbridge_gradium.server import make_app

from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, SpeechSample, make_speech_sample
from speechbridge.testing.scripted import ScriptedTTSSettings, ToneSpeaker

gradium = pytest.importorskip("gradium")
pytestmark = pytest.mark.asyncio(loop_scope="module")  # one event loop, so one server serves the module

TIMEOUT_S: Final = 10.0
TEXT: Final = "hello from the gradium front"
RATE: Final = 24000  # the SDK's bare "pcm" input


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sample() -> SpeechSample:
    return await make_speech_sample(ScriptedTTS(sample_rate=RATE), TEXT, sample_rate=RATE)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(sample: SpeechSample) -> AsyncIterator[LiveServer]:
    stt = ScriptedSTT.for_audio(sample.audio, sample.words, sample_rate=RATE)
    async with LiveServer(make_app(stt, ScriptedTTS(), api_keys={"test-key"})) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Any:
    return gradium.GradiumClient(base_url=server.url + "/api/", api_key="test-key")


def expected_tone_words(text: str) -> list[tuple[str, float, float]]:
    speaker = ToneSpeaker(ScriptedTTSSettings())
    return [(t.text, t.start_s, t.end_s) for t in (speaker.speak(word)[1] for word in text.split())]


async def test_buffered_stt_transcribes(client: Any, sample: SpeechSample) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        result = await client.stt({"input_format": "pcm"}, sample.audio.data)
    assert result.text.split() == list(sample.words)
    starts = [segment.start_s for segment in result.text_with_timestamps]
    assert starts == sorted(starts) and 0.2 <= starts[0] <= 0.4  # the sample opens with 0.3 s of silence
    assert result.request_id


async def test_buffered_stt_with_wav_and_json_config(client: Any, sample: SpeechSample) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(sample.audio.data)
    setup = {"input_format": "wav", "model_name": "default", "json_config": {"language": "en", "delay_in_frames": 8}}
    async with asyncio.timeout(TIMEOUT_S):
        result = await client.stt(setup, buffer.getvalue())
    assert result.text.split() == list(sample.words)


async def test_realtime_stt_with_flush_until_close(client: Any, sample: SpeechSample) -> None:
    messages: list[dict[str, Any]] = []
    data = sample.audio.data
    async with asyncio.timeout(TIMEOUT_S):
        async with client.stt_realtime(model_name="default", input_format="pcm", json_config={"language": "en"}) as stt:
            for start in range(0, len(data), 3840):
                await stt.send_audio(data[start : start + 3840])
            await stt.send_flush(flush_id=7)
            async for message in stt:
                messages.append(message)
                if message["type"] == "flushed":
                    break
            await stt.send_eos()
            async for message in stt:
                messages.append(message)
    kinds = [message["type"] for message in messages]
    assert kinds[0] == "ready" and kinds[-1] == "end_of_stream"
    ready = messages[0]
    assert ready["sample_rate"] == RATE and ready["frame_size"] == 1920 and ready["delay_in_frames"] == 10
    before_flush = kinds[: kinds.index("flushed")]
    words = [message["text"] for message in messages[: len(before_flush)] if message["type"] == "text"]
    assert words == list(sample.words), "all text must arrive before flushed"
    assert messages[kinds.index("flushed")]["flush_id"] == 7
    steps = [message for message in messages if message["type"] == "step"]
    assert len(steps) == -(-len(data) // 3840)  # one per 80 ms
    assert all(len(step["vad"]) == 4 for step in steps)


async def test_realtime_stt_waiting_for_ready(client: Any) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        async with client.stt_realtime(
            input_format="pcm_16000", wait_for_ready_on_start=True, json_config={"delay_in_tokens": 16}
        ) as stt:
            assert stt.ready["type"] == "ready" and stt.ready["sample_rate"] == 16000
            assert stt.ready["delay_in_frames"] == 16
            await stt.send_audio(bytes(3200))
            await stt.send_eos()
            kinds = [message["type"] async for message in stt]
    assert kinds[-1] == "end_of_stream" and "text" not in kinds


async def test_buffered_tts_pcm_with_word_timings(client: Any) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        result = await client.tts({"voice_id": "YTpq7expH9539ERJ", "output_format": "pcm"}, TEXT)
    assert result.sample_rate == 48000
    expected = expected_tone_words(TEXT)
    assert [t.text for t in result.text_with_timestamps] == [word for word, _, _ in expected]
    times = [(t.start_s, t.stop_s) for t in result.text_with_timestamps]
    assert [value for pair in times for value in pair] == pytest.approx(
        [value for _, start, end in expected for value in (start, end)], abs=1e-3
    )
    assert len(result.pcm16()) == round(expected[-1][2] * 48000)


async def test_buffered_tts_wav_decodes(client: Any) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        result = await client.tts({"output_format": "wav", "json_config": {"padding_bonus": -1.0}}, ["hello", "world"])
    assert result.raw_data[:4] == b"RIFF"
    words = [t.text for t in result.text_with_timestamps]
    assert words == ["hello", "world"]  # two text messages, joined with one space


async def test_realtime_tts_multiplexed(client: Any) -> None:
    texts = {"req-0": "one two three", "req-1": "four five"}
    received: dict[str, list[dict[str, Any]]] = {key: [] for key in texts}
    async with asyncio.timeout(TIMEOUT_S):
        async with client.tts_realtime(send_setup_on_start=False) as tts:
            for key, text in texts.items():
                setup = {"voice_id": "YTpq7expH9539ERJ", "output_format": "pcm"}
                await tts.send_setup(setup | {"client_req_id": key, "close_ws_on_eos": False})
                await tts.send_text(text, client_req_id=key)
                await tts.send_eos(client_req_id=key)
            ended = 0
            async for message in tts:
                received[message["client_req_id"]].append(message)
                ended += message["type"] == "end_of_stream"
                if ended == len(texts):
                    break
    for key, text in texts.items():
        kinds = [message["type"] for message in received[key]]
        assert kinds[0] == "ready" and kinds[-1] == "end_of_stream" and kinds.count("ready") == 1
        assert [message["text"] for message in received[key] if message["type"] == "text"] == text.split()
        audio = b"".join(message["audio"] for message in received[key] if message["type"] == "audio")
        assert len(audio) // 2 == round(expected_tone_words(text)[-1][2] * 48000)


async def test_realtime_tts_error_raises(client: Any) -> None:
    with pytest.raises(RuntimeError, match="unknown voice"):
        async with asyncio.timeout(TIMEOUT_S):
            async with client.tts_realtime(voice_id="no-such-voice", output_format="pcm") as tts:
                async for _ in tts:
                    pass


async def test_buffered_stt_reports_server_errors(client: Any) -> None:
    with pytest.raises(Exception, match=r"unsupported input_format 'mp3' \(accepted: pcm, .*\(1008\)"):
        async with asyncio.timeout(TIMEOUT_S):
            await client.stt({"input_format": "mp3"}, b"\0" * 100)


async def test_credits_and_voices(client: Any) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        credits = await client.credits()
        voices = await client.voice_list()
    assert credits["remaining_credits"] == 1_000_000 and credits["allocated_credits"] == 1_000_000
    ids = [voice["uid"] for voice in voices]
    assert {"sine", "square", "YTpq7expH9539ERJ"} <= set(ids)


async def test_a_wrong_key_is_refused(server: LiveServer) -> None:
    client = gradium.GradiumClient(base_url=server.url + "/api/", api_key="wrong")
    async with asyncio.timeout(TIMEOUT_S):
        with pytest.raises(Exception, match=r"API key is revoked or expired \(1008\)"):
            await client.stt({"input_format": "pcm"}, bytes(3840))
        with pytest.raises(Exception, match="401"):
            await client.credits()
