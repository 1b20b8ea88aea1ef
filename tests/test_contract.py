"""Every installed backend, and the scripted providers, pass the backend contract.

Each provider serves the whole module, as it would serve many streams in an app (and its engines load once).
Backends that talk to a vendor run the same suites in their own tests, against their fake server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from speechbridge.provider import Provider
from speechbridge.stt import STTProvider
from speechbridge.testing import ScriptedSTT, SpeechSample, scripted_registry
from speechbridge.testing.contract import STTContract, TTSContract
from speechbridge.tts import TTSProvider

REGISTRY = scripted_registry()


def _serve(provider: Provider[Any]) -> Iterator[Any]:
    yield provider
    asyncio.run(provider.aclose())


def _offline(kind: str) -> list[str]:
    """The providers of ``kind`` that need no vendor (vendor backends run the contract against their fake server)."""
    classes = {name: REGISTRY.stt(name) if kind == "stt" else REGISTRY.tts(name) for name in REGISTRY.names(kind)}
    return [name for name, cls in classes.items() if cls.api_key_env is None]


@pytest.fixture(scope="module", params=_offline("stt"))
def stt_provider(request: pytest.FixtureRequest, speech_sample: SpeechSample) -> Iterator[STTProvider[Any]]:
    cls = REGISTRY.stt(request.param)
    yield from _serve(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words) if cls is ScriptedSTT else cls())


@pytest.fixture(scope="module", params=_offline("tts"))
def tts_provider(request: pytest.FixtureRequest) -> Iterator[TTSProvider[Any]]:
    cls = REGISTRY.tts(request.param)
    yield from _serve(cls())


class TestSTT(STTContract):
    pass


class TestTTS(TTSContract):
    pass
