"""pytest fixtures for testing speech apps offline (loaded through the ``pytest11`` entry point).

- ``speech_sample``: a :class:`SpeechSample` of :data:`DEFAULT_TEXT` spoken by :class:`ScriptedTTS`; override it to
  test with other speech.
- ``scripted_stt``: a :class:`ScriptedSTT` that hears exactly the words of ``speech_sample`` in its audio.
- ``scripted_tts``: a :class:`ScriptedTTS` with default settings.
- ``speech_registry``: the installed backends plus the scripted providers.
- ``local_providers``: the STT and TTS classes of the offline ``local`` backend (skips the test without it);
  ``local_speech``: real speech of :data:`DEFAULT_TEXT` by its TTS.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..plugins import ProviderRegistry, get_registry
from ..stt import STTProvider
from ..tts import TTSProvider
from .plugin import scripted_registry
from .samples import DEFAULT_TEXT, SpeechSample, make_speech_sample
from .scripted import ScriptedSTT, ScriptedTTS

__all__ = ["local_providers", "local_speech", "scripted_stt", "scripted_tts", "speech_registry", "speech_sample"]


@pytest.fixture(scope="session")
def speech_sample() -> SpeechSample:
    """Tones standing for the words of DEFAULT_TEXT, 16 kHz, with 0.3 s of silence on both sides."""
    return asyncio.run(make_speech_sample(ScriptedTTS(sample_rate=16000), DEFAULT_TEXT))


@pytest.fixture
def scripted_stt(speech_sample: SpeechSample) -> ScriptedSTT:
    """A ScriptedSTT that hears the words of ``speech_sample`` over its audio."""
    return ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words)


@pytest.fixture
def scripted_tts() -> ScriptedTTS:
    """A ScriptedTTS with default settings."""
    return ScriptedTTS()


@pytest.fixture(scope="session")
def speech_registry() -> ProviderRegistry:
    """The installed backends plus the scripted providers."""
    return scripted_registry()


@pytest.fixture(scope="session")
def local_providers() -> tuple[type[STTProvider[Any]], type[TTSProvider[Any]]]:
    """The classes of the offline ``local`` backend's STT and TTS; the test is skipped when it is not installed."""
    registry = get_registry()
    if "local" not in registry.names("stt") or "local" not in registry.names("tts"):
        pytest.skip("the local backend is not installed")
    return registry.stt("local"), registry.tts("local")


@pytest.fixture(scope="session")
def local_speech(local_providers: tuple[type[STTProvider[Any]], type[TTSProvider[Any]]]) -> SpeechSample:
    """Real speech of DEFAULT_TEXT, spoken by the local TTS."""

    async def speak() -> SpeechSample:
        async with local_providers[1]() as tts:
            return await make_speech_sample(tts, DEFAULT_TEXT)

    return asyncio.run(speak())
