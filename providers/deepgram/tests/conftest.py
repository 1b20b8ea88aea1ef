"""Fixtures: a Deepgram front over the scripted providers, on 127.0.0.1, in its own thread and event loop.

The front runs apart from the test's loop so the contract can check that a client stream leaves no task behind, and
so the synchronous Deepgram SDK can call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from speechbridge_deepgram.server import make_app

from speechbridge.stt import STTProvider
from speechbridge.testing import ScriptedSTT, ScriptedTTS, SpeechSample, ThreadedServer
from speechbridge.tts import TTSProvider

KEY = "dg-test-key"


class DeepgramFront(ThreadedServer):
    """A Deepgram front over ``stt`` and ``tts`` on its own loop in a thread; they close with it."""

    def __init__(self, stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, **options: Any) -> None:
        super().__init__(make_app(stt, tts, api_keys=[KEY], **options), closing=(stt, tts))


@pytest.fixture(scope="session")
def api_key() -> str:
    return KEY


@pytest.fixture(scope="module")
def front(speech_sample: SpeechSample) -> Iterator[DeepgramFront]:
    """A Deepgram front that hears the words of ``speech_sample`` and speaks tones."""
    with DeepgramFront(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words), ScriptedTTS()) as server:
        yield server


@pytest.fixture(scope="session")
def front_thread() -> type[DeepgramFront]:
    """The class that serves a Deepgram front over given providers in a thread: ``with front_thread(stt, tts)``."""
    return DeepgramFront
