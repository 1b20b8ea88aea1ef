"""Fixtures: a Deepgram front over the scripted providers, on 127.0.0.1, in its own thread and event loop.

The front runs apart from the test's loop so the contract can check that a client stream leaves no task behind, and
so the synchronous Deepgram SDK can call it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from speechbridge_deepgram.server import make_app

from speechbridge.stt import STTProvider
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, SpeechSample
from speechbridge.tts import TTSProvider

KEY = "dg-test-key"
START_TIMEOUT_S = 30.0


class FrontThread:
    """A Deepgram front under :class:`LiveServer` on its own loop in a thread; ``url`` is its base URL."""

    def __init__(self, stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, **options: Any) -> None:
        self.stt, self.tts = stt, tts
        self.app = make_app(stt, tts, api_keys=[KEY], **options)
        self.url = ""
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="deepgram front", daemon=True)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._error = error
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with LiveServer(self.app) as server:
            self.url = server.url
            self._started.set()
            await self._stop.wait()

    def __enter__(self) -> FrontThread:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or not self.url:
            raise RuntimeError(f"the Deepgram front did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT_S)
        if self._error is not None:
            raise self._error


@pytest.fixture(scope="session")
def api_key() -> str:
    return KEY


@pytest.fixture(scope="module")
def front(speech_sample: SpeechSample) -> Iterator[FrontThread]:
    """A Deepgram front that hears the words of ``speech_sample`` and speaks tones."""
    with FrontThread(ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words), ScriptedTTS()) as server:
        yield server


@pytest.fixture(scope="session")
def front_thread() -> type[FrontThread]:
    """The class that serves a Deepgram front over given providers in a thread: ``with front_thread(stt, tts)``."""
    return FrontThread
