"""Fixtures: a Cartesia front on 127.0.0.1, in a thread with its own event loop, backed by the scripted providers.

The front runs on its own loop so the test's loop holds only the client's tasks (the contract checks that a stream
leaves none behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pytest
from speechbridge_cartesia.server import make_app

from speechbridge.stt import STTProvider
from speechbridge.testing import ScriptedSTT, ScriptedTTS, SpeechSample, ThreadedServer
from speechbridge.tts import TTSProvider

KEY: Final = "cartesia-test-key"


class CartesiaFront(ThreadedServer):
    """A Cartesia front over ``stt`` and ``tts`` on its own loop in a thread; they close with it. ``key`` is the
    API key it accepts."""

    key = KEY

    def __init__(self, stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, **options: Any) -> None:
        super().__init__(make_app(stt, tts, api_keys=[KEY], **options), closing=(stt, tts))


@pytest.fixture(scope="module")
def scripted_front(speech_sample: SpeechSample) -> Iterator[CartesiaFront]:
    """A Cartesia front that hears the words of ``speech_sample`` and speaks tones."""
    with CartesiaFront(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words), ScriptedTTS()) as front:
        yield front


@pytest.fixture(scope="module")
def front_thread() -> type[CartesiaFront]:
    """The class of a Cartesia front in a thread, for tests that need other backends behind it."""
    return CartesiaFront
