"""The ElevenLabs STT client against the ElevenLabs front: options, auth, tokens, commits and turns."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets
from speechbridge_elevenlabs.account import create_token
from speechbridge_elevenlabs.stt import ElevenLabsSTT, input_format_for

from speechbridge.audio import AudioFormat, PCMAudio, encode
from speechbridge.errors import AudioFormatError, AuthenticationError, ConfigError, UnsupportedFeature
from speechbridge.events import Flushed, Ready, Transcript, TurnEnded
from speechbridge.testing import ScriptedSTT, SpeechSample
from speechbridge.testing.contract import final_text, recognise, within


def test_live_formats_go_as_they_are_or_become_pcm_at_a_scribe_rate() -> None:
    assert input_format_for(AudioFormat.pcm16(16000)) == ("pcm_16000", AudioFormat.pcm16(16000))
    assert input_format_for(AudioFormat("mulaw", 8000)) == ("ulaw_8000", AudioFormat("mulaw", 8000))
    assert input_format_for(AudioFormat("alaw", 8000)) == ("pcm_8000", AudioFormat.pcm16(8000))
    assert input_format_for(AudioFormat("pcm_f32le", 32000)) == ("pcm_44100", AudioFormat.pcm16(44100))
    with pytest.raises(AudioFormatError, match="transcribe"):
        input_format_for(AudioFormat("wav"))


def test_vendor_spellings_and_values_are_validated() -> None:
    stt = ElevenLabsSTT(api_key="k", model_id="scribe_v2", language_code="fr", keyterms=["Gradium"])
    assert stt.settings.model == "scribe_v2" and stt.settings.language == "fr"
    query = dict(stt.settings.realtime_query("pcm_16000"))
    assert query["model_id"] == "scribe_v2_realtime" and query["commit_strategy"] == "vad"
    assert query["include_timestamps"] == "true" and query["keyterms"] == "Gradium"
    assert stt.settings.batch_form()["language_code"] == "fr"
    with pytest.raises(ConfigError, match="commit_strategy") as info:
        ElevenLabsSTT(api_key="k", commit_strategy="sometimes")
    assert info.value.allowed == ("vad", "manual")
    with pytest.raises(ConfigError, match="out of range"):
        ElevenLabsSTT(api_key="k", vad_silence_threshold_secs=5)
    with pytest.raises(ConfigError, match="ISO-639"):
        ElevenLabsSTT(api_key="k", language="English")
    with pytest.raises(ConfigError, match="keyterms"):
        ElevenLabsSTT(api_key="k", keyterms=[""])


async def test_options_of_the_other_endpoint_are_refused_not_dropped() -> None:
    with pytest.raises(UnsupportedFeature, match="diarize, seed"):
        ElevenLabsSTT(api_key="k", diarize=True, seed=3).stream(format="pcm_16000")
    with pytest.raises(UnsupportedFeature, match="vad_threshold"):
        await ElevenLabsSTT(api_key="k", vad_threshold=0.5).transcribe(b"\0\0" * 800, format="pcm_16000")
    form = ElevenLabsSTT(api_key="k", diarize=True, num_speakers=2).settings.batch_form()
    assert form["diarize"] == "true" and form["num_speakers"] == "2"


def test_base_url_may_carry_v1_and_maps_to_ws() -> None:
    settings = ElevenLabsSTT(api_key="k", base_url="https://gateway.example/v1/").settings
    assert settings.api_url == "https://gateway.example" and settings.ws_url == "wss://gateway.example"
    assert ElevenLabsSTT(api_key="k", region="eu").settings.api_url == "https://api.eu.residency.elevenlabs.io"


async def test_no_key_fails_before_connecting() -> None:
    stt = ElevenLabsSTT(base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
        stt.stream(format="pcm_16000")
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
        await stt.transcribe(b"\0\0" * 800, format="pcm_16000")


async def test_batch_gives_words_and_language(scripted_front: Any, speech_sample: SpeechSample) -> None:
    async with ElevenLabsSTT(api_key=scripted_front.key, base_url=scripted_front.url, model_id="scribe_v2") as stt:
        result = await within(stt.transcribe(encode(speech_sample.audio, "pcm_24000"), format="pcm_24000"))
    assert result.is_final and result.text == speech_sample.text
    assert [word.text for word in result.words] == list(speech_sample.words)
    assert all(word.confidence == 1.0 for word in result.words)
    assert result.language == "eng"


async def test_wrong_key_is_an_authentication_error(scripted_front: Any, speech_sample: SpeechSample) -> None:
    async with ElevenLabsSTT(api_key="wrong", base_url=scripted_front.url) as stt:
        with pytest.raises(AuthenticationError, match="Invalid API key"):
            await stt.transcribe(speech_sample.audio)
        with pytest.raises(AuthenticationError):
            async with stt.stream(format="pcm_16000"):
                pass


async def test_single_use_tokens_work_once(scripted_front: Any, speech_sample: SpeechSample) -> None:
    token = await create_token(scripted_front.key, "realtime_scribe", base_url=scripted_front.url)
    assert "sutkn_" not in repr(token)
    async with ElevenLabsSTT(token=token.token, base_url=scripted_front.url) as stt:
        events = await recognise(stt, speech_sample.audio.data, speech_sample.audio.format)
        assert final_text(events) == speech_sample.text
        with pytest.raises(AuthenticationError):
            async with stt.stream(format=speech_sample.audio.format):
                pass


async def test_a_token_source_mints_one_per_use(scripted_front: Any, speech_sample: SpeechSample) -> None:
    async def mint() -> str:
        return (await create_token(scripted_front.key, "batch_scribe", base_url=scripted_front.url)).token

    async with ElevenLabsSTT(token=mint, base_url=scripted_front.url) as stt:
        for _ in range(2):
            assert (await within(stt.transcribe(speech_sample.audio))).text == speech_sample.text


async def test_a_token_of_another_kind_is_refused(scripted_front: Any, speech_sample: SpeechSample) -> None:
    token = await create_token(scripted_front.key, "tts_websocket", base_url=scripted_front.url)
    async with ElevenLabsSTT(token=token.token, base_url=scripted_front.url) as stt:
        with pytest.raises(AuthenticationError):
            await stt.transcribe(speech_sample.audio)
    with pytest.raises(ConfigError, match="token_type"):
        await create_token(scripted_front.key, "everything", base_url=scripted_front.url)


async def test_manual_commits_flush_and_end_no_turn(scripted_front: Any, speech_sample: SpeechSample) -> None:
    audio = speech_sample.audio
    async with ElevenLabsSTT(api_key=scripted_front.key, base_url=scripted_front.url, commit_strategy="manual") as stt:
        events = await recognise(stt, audio.data + bytes(audio.format.bytes_for(2.0)), audio.format)
        assert final_text(events) == speech_sample.text
        assert not [event for event in events if isinstance(event, TurnEnded)]
        async with stt.stream(format=audio.format) as stream:
            await stream.send_audio(audio.data)
            flushed = await within(stream.flush())
            await stream.end()
            after = await within(stream.collect())
    assert isinstance(flushed, Flushed) and flushed in after
    finals = [event for event in after if isinstance(event, Transcript) and event.is_final]
    assert after.index(finals[0]) < after.index(flushed)


async def test_vad_commits_end_turns_with_their_text(scripted_front: Any, speech_sample: SpeechSample) -> None:
    audio = speech_sample.audio
    silence = bytes(audio.format.bytes_for(1.5))
    async with ElevenLabsSTT(api_key=scripted_front.key, base_url=scripted_front.url) as stt:
        events = await recognise(stt, audio.data + silence + audio.data[: audio.format.bytes_for(0.5)], audio.format)
    assert isinstance(events[0], Ready) and events[0].sample_rate == 16000
    turns = [event for event in events if isinstance(event, TurnEnded)]
    assert turns[0].text == speech_sample.text and turns[0].reason == "vendor"
    assert turns[0].time_s is not None and turns[0].time_s <= audio.duration_s


async def test_front_refuses_formats_scribe_does_not_take(scripted_front: Any) -> None:
    url = f"{scripted_front.url.replace('http', 'ws')}/v1/speech-to-text/realtime?audio_format=pcm_11025"
    async with websockets.connect(url, additional_headers={"xi-api-key": scripted_front.key}) as websocket:
        message = json.loads(await asyncio.wait_for(websocket.recv(), 5))
        assert message["message_type"] == "input_error" and "pcm_16000" in message["error"]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(websocket.recv(), 5)
        assert websocket.close_code == 1008


async def test_stream_url_carries_the_settings(scripted_front: Any) -> None:
    stt = ElevenLabsSTT(api_key="k", base_url="http://host:1", language="de", vad_threshold=0.4)
    stream = stt.stream(format="mulaw_8000")
    query = parse_qs(urlsplit(stream._url).query)
    assert stream._url.startswith("ws://host:1/v1/speech-to-text/realtime?")
    assert query["audio_format"] == ["ulaw_8000"] and query["language_code"] == ["de"]
    assert query["vad_threshold"] == ["0.4"]
    await stream.aclose()


async def test_the_front_commits_after_the_silence_asked_for(front_thread: Any, speech_sample: SpeechSample) -> None:
    """A live speaker pauses for 1 s: a 0.5 s threshold commits the first sentence then, a 3 s one does not."""
    audio = speech_sample.audio
    first = audio.data + bytes(audio.format.bytes_for(1.0))
    backend = ScriptedSTT.for_audio(PCMAudio(first + audio.data, audio.sample_rate), speech_sample.words * 2)
    with front_thread(backend, None) as front:
        turns: dict[float, list[str]] = {}
        for silence_s in (0.5, 3.0):
            async with (
                ElevenLabsSTT(api_key=front.key, base_url=front.url, vad_silence_threshold_secs=silence_s) as stt,
                stt.stream(format=audio.format) as stream,
            ):
                await stream.send_audio(first)
                events = []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        async for event in stream:
                            events.append(event)
                            if isinstance(event, TurnEnded):
                                break
                await stream.send_audio(audio.data)
                await stream.end()
                events += await within(stream.collect())
            turns[silence_s] = [event.text for event in events if isinstance(event, TurnEnded)]
    assert turns[0.5] == [speech_sample.text, speech_sample.text]
    assert turns[3.0] == [f"{speech_sample.text} {speech_sample.text}"]
