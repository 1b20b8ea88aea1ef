"""The Deepgram backend passes the backend contract against the Deepgram front, with the scripted providers behind
it and with the local engines (real speech in, real speech out)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from speechbridge_deepgram.stt import DeepgramSTT
from speechbridge_deepgram.tts import DeepgramTTS

from speechbridge.testing import SpeechSample
from speechbridge.testing.contract import STTContract, TTSContract


class TestDeepgramSTT(STTContract):
    @pytest.fixture
    async def stt_provider(self, front: Any, api_key: str) -> AsyncIterator[DeepgramSTT]:
        async with DeepgramSTT(api_key=api_key, base_url=front.url) as stt:
            yield stt


class TestDeepgramTTS(TTSContract):
    @pytest.fixture
    async def tts_provider(self, front: Any, api_key: str) -> AsyncIterator[DeepgramTTS]:
        async with DeepgramTTS(api_key=api_key, base_url=front.url) as tts:
            yield tts


# --- the local engines behind the front: real speech through Deepgram's wire --------------------------------------


@pytest.fixture(scope="module")
def local_front(front_thread: Any, local_providers: Any) -> Iterator[Any]:
    """A Deepgram front backed by the local engines: pocketsphinx listens, hibari-tts speaks."""
    stt_class, tts_class = local_providers
    with front_thread(stt_class(), tts_class()) as front:
        yield front


class TestLocalSTT(STTContract):
    @pytest.fixture
    def speech_sample(self, local_speech: SpeechSample) -> SpeechSample:
        return local_speech

    @pytest.fixture
    async def stt_provider(self, local_front: Any, api_key: str) -> AsyncIterator[DeepgramSTT]:
        async with DeepgramSTT(api_key=api_key, base_url=local_front.url) as stt:
            yield stt


class TestLocalTTS(TTSContract):
    @pytest.fixture
    async def tts_provider(self, local_front: Any, api_key: str) -> AsyncIterator[DeepgramTTS]:
        async with DeepgramTTS(api_key=api_key, base_url=local_front.url) as tts:
            yield tts
