"""The Cartesia backend passes the backend contract against the Cartesia front on 127.0.0.1.

Batch calls go over REST; STT streams over ``/stt/websocket``; TTS streams as contexts on their own socket and
multiplexed on one shared socket (``multiplex=True``). Behind the front: the scripted providers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from speechbridge_cartesia.stt import CartesiaSTT
from speechbridge_cartesia.tts import CartesiaTTS

from speechbridge.events import AudioChunk, WordTiming
from speechbridge.testing.contract import STTContract, TTSContract, within

TRANSPORTS = {"own-socket": False, "multiplexed": True}


@pytest.fixture(params=list(TRANSPORTS), ids=list(TRANSPORTS))
def multiplex(request: pytest.FixtureRequest) -> bool:
    return TRANSPORTS[request.param]


class TestScriptedSTT(STTContract):
    @pytest.fixture
    async def stt_provider(self, scripted_front: Any) -> AsyncIterator[CartesiaSTT]:
        async with CartesiaSTT(api_key=scripted_front.key, base_url=scripted_front.url) as stt:
            yield stt


class TestScriptedTTS(TTSContract):
    @pytest.fixture
    async def tts_provider(self, scripted_front: Any, multiplex: bool) -> AsyncIterator[CartesiaTTS]:
        async with CartesiaTTS(api_key=scripted_front.key, base_url=scripted_front.url, multiplex=multiplex) as tts:
            yield tts


async def test_concurrent_streams_are_contexts_of_one_socket_when_multiplexed(scripted_front: Any) -> None:
    async def speak(tts: CartesiaTTS, text: str) -> list[Any]:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text(text)
            await stream.end()
            return await within(stream.collect())

    async with CartesiaTTS(api_key=scripted_front.key, base_url=scripted_front.url, multiplex=True) as tts:
        spoken = await asyncio.gather(*(speak(tts, f"stream number {n}") for n in range(3)))
        shared = tts._shared
        assert shared is not None and shared.usable and shared.contexts == 0
    for n, events in enumerate(spoken):
        assert [event.text for event in events if isinstance(event, WordTiming)] == ["stream", "number", str(n)]
        assert sum(len(event.data) for event in events if isinstance(event, AudioChunk)) > 0
