"""Deepgram's own Python SDK (deepgram-sdk 7.17.0) as a client of the Deepgram front: if the vendor's client works
against it, the front (the fake server of the other tests) speaks the real protocol."""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest
from deepgram import AsyncDeepgramClient, DeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results, ListenV1SpeechStarted, ListenV1UtteranceEnd
from deepgram.speak.v1.types import SpeakV1Flushed, SpeakV1Metadata, SpeakV1Text

from speechbridge.audio import encode
from speechbridge.testing import SpeechSample, word_overlap

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def environment(front: Any) -> DeepgramClientEnvironment:
    return DeepgramClientEnvironment(base=front.url, production=front.ws_url, agent=front.ws_url, agent_rest=front.url)


@pytest.fixture
def client(front: Any, api_key: str) -> DeepgramClient:
    return DeepgramClient(api_key=api_key, environment=environment(front))


def test_transcribe_file(client: DeepgramClient, speech_sample: SpeechSample) -> None:
    response = client.listen.v1.media.transcribe_file(
        request=encode(speech_sample.audio, "wav"), model="nova-3", language="en", smart_format=True
    )
    alternative = response.results.channels[0].alternatives[0]
    assert word_overlap(speech_sample.words, alternative.transcript) >= 0.9
    assert [word.word for word in alternative.words] and alternative.words[0].start < alternative.words[-1].end
    assert response.metadata.request_id and response.metadata.duration > 0


def test_transcribe_raw_pcm_with_query_parameters(client: DeepgramClient, speech_sample: SpeechSample) -> None:
    response = client.listen.v1.media.transcribe_file(
        request=speech_sample.audio.data,
        model="nova-3",
        request_options={"additional_query_parameters": {"encoding": "linear16", "sample_rate": 16000}},
    )
    assert word_overlap(speech_sample.words, response.results.channels[0].alternatives[0].transcript) >= 0.9


def test_bad_key_is_an_api_error_401(front: Any, speech_sample: SpeechSample) -> None:
    client = DeepgramClient(api_key="wrong", environment=environment(front))
    with pytest.raises(ApiError) as info:
        client.listen.v1.media.transcribe_file(request=encode(speech_sample.audio, "wav"), model="nova-3")
    assert info.value.status_code == 401


def test_live_stream_with_finalize_and_close_stream(client: DeepgramClient, speech_sample: SpeechSample) -> None:
    audio = speech_sample.audio.data + bytes(speech_sample.audio.format.bytes_for(1.5))
    messages = []
    with client.listen.v1.connect(
        model="nova-3",
        encoding="linear16",
        sample_rate=16000,
        interim_results="true",
        endpointing=300,
        utterance_end_ms=1000,
        vad_events="true",
    ) as connection:
        for start in range(0, len(audio), 3200):
            connection.send_media(audio[start : start + 3200])
        connection.send_keep_alive()
        connection.send_finalize()
        connection.send_close_stream()
        messages = list(connection)
    results = [message for message in messages if isinstance(message, ListenV1Results)]
    finals = " ".join(r.channel.alternatives[0].transcript for r in results if r.is_final)
    assert word_overlap(speech_sample.words, finals) >= 0.9
    assert any(not r.is_final for r in results), "interim results were asked for"
    assert any(r.speech_final for r in results), "1.5 s of silence after speech is an endpoint"
    assert any(r.from_finalize for r in results)
    assert any(isinstance(message, ListenV1SpeechStarted) for message in messages)
    assert any(isinstance(message, ListenV1UtteranceEnd) for message in messages)
    assert isinstance(messages[-1], ListenV1Metadata)


def test_access_token_from_a_grant_is_accepted(front: Any, api_key: str, speech_sample: SpeechSample) -> None:
    grant = DeepgramClient(api_key=api_key, environment=environment(front)).auth.v1.tokens.grant(ttl_seconds=60)
    assert grant.expires_in == 60
    client = DeepgramClient(access_token=grant.access_token, environment=environment(front))
    response = client.listen.v1.media.transcribe_file(request=encode(speech_sample.audio, "wav"), model="nova-3")
    assert word_overlap(speech_sample.words, response.results.channels[0].alternatives[0].transcript) >= 0.9


def test_speak_rest(client: DeepgramClient) -> None:
    audio = b"".join(
        client.speak.v1.audio.generate(
            text="Hello there", model="aura-2-thalia-en", encoding="linear16", sample_rate=16000, container="none"
        )
    )
    assert 0.3 < len(audio) / 32000 < 3.0


def test_speak_rest_default_is_wav(client: DeepgramClient) -> None:
    audio = b"".join(client.speak.v1.audio.generate(text="Hello there", model="aura-2-thalia-en"))
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getframerate() == 24000 and wav.getnframes() > 0


def test_speak_socket(client: DeepgramClient) -> None:
    audio, messages = b"", []
    with client.speak.v1.connect(model="aura-2-thalia-en", encoding="linear16", sample_rate=16000) as connection:
        connection.send_text(SpeakV1Text(text="Hello there"))
        connection.send_flush()
        for message in connection:
            if isinstance(message, bytes):
                audio += message
            else:
                messages.append(message)
            if isinstance(message, SpeakV1Flushed):
                break
        connection.send_close()
    assert isinstance(messages[0], SpeakV1Metadata)
    assert 0.3 < len(audio) / 32000 < 3.0


async def test_async_client_streams_and_speaks(front: Any, api_key: str, speech_sample: SpeechSample) -> None:
    client = AsyncDeepgramClient(api_key=api_key, environment=environment(front))
    async with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate=16000) as connection:
        await connection.send_media(speech_sample.audio.data)
        await connection.send_close_stream()
        messages = [message async for message in connection]
    finals = " ".join(
        m.channel.alternatives[0].transcript for m in messages if isinstance(m, ListenV1Results) and m.is_final
    )
    assert word_overlap(speech_sample.words, finals) >= 0.9
    assert isinstance(messages[-1], ListenV1Metadata)
    chunks = [
        chunk
        async for chunk in client.speak.v1.audio.generate(
            text="Hello there", model="aura-2-thalia-en", encoding="mulaw", sample_rate=8000, container="none"
        )
    ]
    assert 0.3 < len(b"".join(chunks)) / 8000 < 3.0
