"""The ElevenLabs backend passes the backend contract against the ElevenLabs front on 127.0.0.1.

Behind the front: the scripted providers (deterministic, fitted to the contract's speech sample). Streams use the
default ``commit_strategy="vad"``, whose vendor commits end turns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from speechbridge_elevenlabs.stt import ElevenLabsSTT
from speechbridge_elevenlabs.tts import ElevenLabsTTS

from speechbridge.testing import SpeechSample
from speechbridge.testing.contract import STTContract, TTSContract


class TestScriptedSTT(STTContract):
    @pytest.fixture
    async def stt_provider(self, scripted_front: Any) -> AsyncIterator[ElevenLabsSTT]:
        async with ElevenLabsSTT(api_key=scripted_front.key, base_url=scripted_front.url) as stt:
            yield stt


class TestScriptedTTS(TTSContract):
    @pytest.fixture(params=[False, True], ids=["own-socket", "multiplexed"])
    async def tts_provider(self, scripted_front: Any, request: pytest.FixtureRequest) -> AsyncIterator[ElevenLabsTTS]:
        async with ElevenLabsTTS(
            api_key=scripted_front.key, base_url=scripted_front.url, multiplex=request.param
        ) as tts:
            yield tts


# --- the local engines behind the front -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_front(front_thread: Any, local_providers: Any) -> Iterator[Any]:
    """An ElevenLabs front backed by the local engines: pocketsphinx listens, hibari-tts speaks."""
    stt_class, tts_class = local_providers
    with front_thread(stt_class(), tts_class()) as front:
        yield front


class TestLocalSTT(STTContract):
    """Real speech through ElevenLabs' wire to pocketsphinx."""

    @pytest.fixture
    def speech_sample(self, local_speech: SpeechSample) -> SpeechSample:
        return local_speech

    @pytest.fixture
    async def stt_provider(self, local_front: Any) -> AsyncIterator[ElevenLabsSTT]:
        async with ElevenLabsSTT(api_key=local_front.key, base_url=local_front.url) as stt:
            yield stt


class TestLocalTTS(TTSContract):
    """hibari-tts speaking through ElevenLabs' wire, several contexts on one socket."""

    @pytest.fixture
    async def tts_provider(self, local_front: Any) -> AsyncIterator[ElevenLabsTTS]:
        async with ElevenLabsTTS(api_key=local_front.key, base_url=local_front.url, multiplex=True) as tts:
            yield tts
