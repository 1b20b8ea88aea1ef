"""Real speech through Cartesia's wire: the backend contract against a front backed by the local engines
(pocketsphinx listens, hibari-tts speaks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from speechbridge_cartesia.stt import CartesiaSTT
from speechbridge_cartesia.tts import CartesiaTTS

from speechbridge import plugins
from speechbridge.stt import STTProvider
from speechbridge.testing import SpeechSample, make_speech_sample
from speechbridge.testing.contract import STTContract, TTSContract
from speechbridge.tts import TTSProvider


def _local_or_skip() -> tuple[type[STTProvider[Any]], type[TTSProvider[Any]]]:
    registry = plugins.get_registry()
    if "local" not in registry.names("stt") or "local" not in registry.names("tts"):
        pytest.skip("the local backend is not installed")
    return registry.stt("local"), registry.tts("local")


@pytest.fixture(scope="module")
def local_front(front_thread: Any) -> Iterator[Any]:
    stt_class, tts_class = _local_or_skip()
    with front_thread(stt_class(), tts_class()) as front:
        yield front


@pytest.fixture(scope="module")
def local_speech() -> SpeechSample:
    _, tts_class = _local_or_skip()

    async def speak() -> SpeechSample:
        async with tts_class() as tts:
            return await make_speech_sample(tts)

    return asyncio.run(speak())


class TestLocalSTT(STTContract):
    @pytest.fixture
    def speech_sample(self, local_speech: SpeechSample) -> SpeechSample:
        return local_speech

    @pytest.fixture
    async def stt_provider(self, local_front: Any) -> AsyncIterator[CartesiaSTT]:
        async with CartesiaSTT(api_key=local_front.key, base_url=local_front.url) as stt:
            yield stt


class TestLocalTTS(TTSContract):
    @pytest.fixture
    async def tts_provider(self, local_front: Any) -> AsyncIterator[CartesiaTTS]:
        async with CartesiaTTS(api_key=local_front.key, base_url=local_front.url, multiplex=True) as tts:
            yield tts

    async def test_word_timings_as_declared(self, tts_provider: TTSProvider[Any]) -> None:
        pytest.skip("hibari-tts gives no word times, so a front behind it sends no 'timestamps' messages")
