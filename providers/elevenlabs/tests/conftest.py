"""Fixtures: an ElevenLabs front over the scripted providers, on its own event loop in a thread.

The front runs on another loop so the test's loop holds only the client's tasks (the contract checks that a closed
stream leaves none behind), and so the SDK's synchronous client can talk to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from speechbridge_elevenlabs.server import ElevenLabsFront, make_app

from speechbridge.stt import STTProvider
from speechbridge.testing import ScriptedSTT, ScriptedTTS, SpeechSample, ThreadedServer
from speechbridge.tts import TTSProvider

KEY = "el-test-key"


class FrontThread(ThreadedServer):
    """An ElevenLabs front taking the key ``key``; ``url`` is its base (no ``/v1``). Its providers close with it."""

    def __init__(self, stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, **options: Any) -> None:
        super().__init__(make_app(stt, tts, api_keys=[KEY], **options), closing=(stt, tts))
        self.key = KEY

    @property
    def front(self) -> ElevenLabsFront:
        return self.app.state.front  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def front_thread() -> type[FrontThread]:
    """The :class:`FrontThread` class, for tests that need a front of their own."""
    return FrontThread


@pytest.fixture(scope="module")
def scripted_front(speech_sample: SpeechSample) -> Iterator[FrontThread]:
    """An ElevenLabs front that hears the words of ``speech_sample`` and speaks tones."""
    with FrontThread(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words), ScriptedTTS()) as front:
        yield front
