"""pytest fixtures for testing speech apps offline (loaded through the ``pytest11`` entry point).

- ``speech_sample``: a :class:`SpeechSample` of :data:`DEFAULT_TEXT` spoken by :class:`ScriptedTTS`; override it to
  test with other speech.
- ``scripted_stt``: a :class:`ScriptedSTT` that hears exactly the words of ``speech_sample`` in its audio.
- ``scripted_tts``: a :class:`ScriptedTTS` with default settings.
- ``speech_registry``: the installed backends plus the scripted providers.
"""

from __future__ import annotations

import asyncio

import pytest

from ..plugins import ProviderRegistry
from .plugin import scripted_registry
from .samples import DEFAULT_TEXT, SpeechSample, make_speech_sample
from .scripted import ScriptedSTT, ScriptedTTS

__all__ = ["scripted_stt", "scripted_tts", "speech_registry", "speech_sample"]


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
