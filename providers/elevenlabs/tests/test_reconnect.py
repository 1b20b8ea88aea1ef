"""ElevenLabsSTT streams survive dropped sockets: the ElevenLabs front on 127.0.0.1 behind a ChaosProxy that cuts
them.

The front's backend is ``ScriptedSTT(vocabulary=...)``: it names each tone of the audio by its pitch, so a new socket
that hears a replay from the middle of the stream recognises what is there. A replay that skipped, repeated or
misplaced audio changes the words or their times, and the runs below would fail (the control with replay off shows
it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import pytest
from speechbridge_elevenlabs.server import make_app
from speechbridge_elevenlabs.stt import ElevenLabsSTT

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
    InvalidRequest,
    ProviderError,
    SpeechBridgeError,
    TransportError,
)
from speechbridge.events import Flushed, Ready, Reconnected, StreamEnded, STTEvent, Transcript, TurnEnded
from speechbridge.reliability import Reliability
from speechbridge.stt import STTProvider, STTStream
from speechbridge.testing import ChaosProxy, LiveServer
from speechbridge.testing.scripted import (
    ScriptedSTT,
    ScriptedSTTSettings,
    ScriptedSTTStream,
    ScriptedTTSSettings,
    speak_phrases,
)

KEY: Final = "el_reconnect_key"
RATE: Final = 8000
WORDS: Final = ("alpha", "bravo", "charlie", "echo", "hotel", "india", "juliet", "lima", "papa", "seven", "tango")
PHRASES: Final = (("alpha", "bravo", "charlie"), ("echo", "hotel"), ("india", "juliet", "lima", "papa"), ("tango",))
SPEECH, PAUSE_ENDS = speak_phrases(
    PHRASES, pause_s=0.6, settings=ScriptedTTSSettings(sample_rate=RATE, ms_per_char=25, gap_ms=60)
)
AUDIO: Final = SPEECH.data
FLUSH_AT: Final = [round(end * RATE) * 2 for end in PAUSE_ENDS[:-1]]
SPEECH_END: Final = round((PAUSE_ENDS[-1] - 0.6) * RATE) * 2  # the last word's end: no pause makes it final
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)
RUNS: Final = 100
CLOSING_BYTES: Final = 64  # a cut within the close handshake, after the last commit's answer, is no drop
TIME_TOLERANCE_S: Final = 1e-6


@pytest.fixture(autouse=True)
def quiet_asyncio() -> Iterable[None]:
    """uvicorn keeps writing to a socket the proxy cut; asyncio warns about each write. Not what is tested here."""
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
async def front() -> AsyncIterator[tuple[LiveServer, ChaosProxy]]:
    app = make_app(ScriptedSTT(vocabulary=WORDS, sample_rate=RATE), None, api_keys=[KEY])
    async with LiveServer(app) as live, ChaosProxy(live.url, seed=2025) as proxy:
        yield live, proxy


def elevenlabs(proxy: ChaosProxy, reliability: Reliability = FAST, **options: Any) -> ElevenLabsSTT:
    """A client committing on flush() and end() only (``commit_strategy="vad"`` waits 0.3 s at the end for more)."""
    return ElevenLabsSTT(
        api_key=KEY, base_url=proxy.url, reliability=reliability, **{"commit_strategy": "manual", **options}
    )


async def run(stream: STTStream, audio: bytes = AUDIO, flush_at: Iterable[int] = FLUSH_AT) -> list[STTEvent]:
    """Send ``audio`` faster than real time, in 2 kB chunks, flushing at ``flush_at``, while reading; every event."""
    async with stream:
        reader = asyncio.create_task(stream.collect())
        try:
            start = 0
            for stop in [*flush_at, len(audio)]:
                for offset in range(start, stop, 2000):
                    await stream.send_audio(audio[offset : min(offset + 2000, stop)])
                if stop < len(audio):
                    await asyncio.wait_for(stream.flush(), 5)
                start = stop
            await stream.end()
            return await asyncio.wait_for(reader, 10)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def final_words(events: Iterable[STTEvent]) -> list[tuple[str, float, float]]:
    return [
        (word.text, word.start_s, word.end_s)
        for event in events
        if isinstance(event, Transcript) and event.is_final
        for word in event.words
    ]


def same_words(got: list[tuple[str, float, float]], want: list[tuple[str, float, float]]) -> bool:
    if [text for text, _, _ in got] != [text for text, _, _ in want]:
        return False
    times = zip([time for word in got for time in word[1:]], [time for word in want for time in word[1:]], strict=True)
    return all(abs(a - b) <= TIME_TOLERANCE_S for a, b in times)


def spoken() -> list[str]:
    return [word for phrase in PHRASES for word in phrase]


async def test_a_hundred_runs_with_random_drops_give_the_uninterrupted_transcript(
    front: tuple[LiveServer, ChaosProxy],
) -> None:
    _, proxy = front
    stt = elevenlabs(proxy)
    try:
        clean = await run(stt.stream(format="pcm_8000"))
        baseline = final_words(clean)
        assert [text for text, _, _ in baseline] == spoken()
        run_bytes = proxy.bytes_forwarded
        started, failures, reconnects = time.perf_counter(), [], 0
        for seed in range(RUNS):
            proxy.clear()
            cuts_before = len(proxy.faults)
            # 1 or 2 cuts, each anywhere from just after the session opened to the answer to the commit of end()
            proxy.cut(after=(1000, run_bytes - CLOSING_BYTES), connections=random.Random(seed).randint(1, 2))
            events = await run(stt.stream(format="pcm_8000"))
            reconnected = [event for event in events if isinstance(event, Reconnected)]
            reconnects += len(reconnected)
            if not same_words(final_words(events), baseline):
                failures.append((seed, proxy.faults[cuts_before:], final_words(events)))
            assert len(proxy.faults) > cuts_before, f"run {seed}: the cut did not happen"
            assert len(reconnected) == len(proxy.faults) - cuts_before
            assert [type(event) for event in events].count(Ready) == 1 and isinstance(events[-1], StreamEnded)
        elapsed = time.perf_counter() - started
    finally:
        await stt.aclose()
    assert failures == []
    assert reconnects >= RUNS
    print(f"\n{RUNS} runs, {reconnects} drops survived, {elapsed:.2f} s")


async def test_the_same_runs_without_replay_lose_words(front: tuple[LiveServer, ChaosProxy]) -> None:
    """The control: with replay off, the harness above sees missing words, so it can fail."""
    _, proxy = front
    stt = elevenlabs(proxy, Reliability(reconnects=5, backoff_s=0.001, replay_limit_s=0))
    try:
        await run(stt.stream(format="pcm_8000"))
        run_bytes = proxy.bytes_forwarded
        lossy = 0
        for _ in range(20):
            proxy.clear()
            proxy.cut(after=(run_bytes // 4, run_bytes // 2))
            events = await run(stt.stream(format="pcm_8000"))
            lost = sum(event.lost_s for event in events if isinstance(event, Reconnected))
            lossy += lost > 0 and [text for text, _, _ in final_words(events)] != spoken()
    finally:
        await stt.aclose()
    print(f"\n{lossy} of 20 runs without replay lost words")
    assert lossy >= 15


async def test_commits_pending_on_a_dead_socket_are_answered_in_order_after_the_reconnect(
    front: tuple[LiveServer, ChaosProxy],
) -> None:
    """A stalled socket is found dead by its pings; the new one answers the commits (flushes, end) sent again."""
    _, proxy = front
    watchful = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002, dead_peer_timeout_s=0.4)
    stt = elevenlabs(proxy, watchful)
    try:
        async with stt.stream(format="pcm_8000") as stream:
            await stream.send_audio(AUDIO[: FLUSH_AT[0]])
            assert await asyncio.wait_for(stream.flush(), 5) == Flushed(1)
            assert proxy.stall_open() == 1
            await stream.send_audio(AUDIO[FLUSH_AT[0] : FLUSH_AT[1]])
            second = asyncio.create_task(stream.flush())
            await asyncio.sleep(0.01)
            await stream.send_audio(AUDIO[FLUSH_AT[1] : FLUSH_AT[2]])
            third = asyncio.create_task(stream.flush())
            await asyncio.sleep(0.05)
            assert not second.done() and not third.done()
            assert list(await asyncio.wait_for(asyncio.gather(second, third), 5)) == [Flushed(2), Flushed(3)]
            await stream.send_audio(AUDIO[FLUSH_AT[2] :])
            proxy.stall_open()
            await stream.end()
            events = await asyncio.wait_for(stream.collect(), 10)
    finally:
        await stt.aclose()
    assert [text for text, _, _ in final_words(events)] == spoken()
    drops = [event for event in events if isinstance(event, Reconnected)]
    assert len(drops) == 2 and all("stopped answering" in (drop.reason or "") for drop in drops)
    assert isinstance(events[-1], StreamEnded) and proxy.connections == 3


async def test_past_the_budget_the_stream_fails_with_the_transport_error(front: tuple[LiveServer, ChaosProxy]) -> None:
    _, proxy = front
    stt = elevenlabs(proxy, Reliability(reconnects=2, backoff_s=0.001, max_backoff_s=0.002))
    proxy.cut(after=(1000, 3000), connections=10)  # every socket dies before any result comes back
    try:
        with pytest.raises(TransportError) as caught:
            await run(stt.stream(format="pcm_8000"))
    finally:
        await stt.aclose()
    assert proxy.connections == 3
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)


class ClosesAtTheEnd:
    """An ASGI wrapper closing the first WebSocket normally (1000) when a commit comes, before it is answered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.closed = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or self.closed:
            await self.app(scope, receive, send)
            return
        closed = False

        async def receiving() -> Any:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and '"commit": true' in (message.get("text") or ""):
                await send({"type": "websocket.close", "code": 1000})
                closed, self.closed = True, self.closed + 1
                return {"type": "websocket.disconnect", "code": 1000}
            return message

        async def sending(message: Any) -> None:
            if not closed:
                await send(message)

        await self.app(scope, receiving, sending)


async def test_a_normal_close_before_the_end_is_answered_is_a_drop() -> None:
    wrapper = ClosesAtTheEnd(make_app(ScriptedSTT(vocabulary=WORDS, sample_rate=RATE), None, api_keys=[KEY]))
    async with LiveServer(wrapper) as live, ChaosProxy(live.url) as proxy:
        stt = elevenlabs(proxy)
        try:
            events = await run(stt.stream(format="pcm_8000"), AUDIO[:SPEECH_END], flush_at=[])
        finally:
            await stt.aclose()
    assert wrapper.closed == 1 and proxy.connections == 2
    assert [text for text, _, _ in final_words(events)] == spoken()  # nothing is final before the commit
    (drop,) = [event for event in events if isinstance(event, Reconnected)]
    assert "code 1000" in (drop.reason or "") and isinstance(events[-1], StreamEnded)


class FaultySTT(ScriptedSTT):
    """Hears like :class:`ScriptedSTT`; its first stream fails with ``error`` once 8 kB of audio came."""

    def __init__(self, error: SpeechBridgeError) -> None:
        super().__init__(vocabulary=WORDS, sample_rate=RATE)
        self.error: SpeechBridgeError | None = error

    def _stream(self, format: AudioFormat, settings: ScriptedSTTSettings) -> STTStream:
        error, self.error = self.error, None
        return FaultyStream(self.name, format, settings, error)


class FaultyStream(ScriptedSTTStream):
    def __init__(
        self, provider: str, format: AudioFormat, settings: ScriptedSTTSettings, error: SpeechBridgeError | None
    ) -> None:
        super().__init__(provider, format, settings)
        self.error, self.received = error, 0

    async def _send_frame(self, frame: bytes) -> None:
        self.received += len(frame)
        if self.error is not None and self.received > 8000:
            raise self.error
        await super()._send_frame(frame)


async def test_a_server_fault_is_survived_and_a_refusal_is_not_retried() -> None:
    async def with_backend(stt: STTProvider[Any]) -> tuple[list[STTEvent] | SpeechBridgeError, int]:
        async with LiveServer(make_app(stt, None, api_keys=[KEY])) as live, ChaosProxy(live.url) as proxy:
            client = elevenlabs(proxy)
            try:
                return await run(client.stream(format="pcm_8000")), proxy.connections
            except SpeechBridgeError as error:
                return error, proxy.connections
            finally:
                await client.aclose()

    events, connections = await with_backend(FaultySTT(ProviderError("injected fault", retryable=True)))
    assert not isinstance(events, SpeechBridgeError) and connections == 2  # a transcriber_error, close 1011
    assert [text for text, _, _ in final_words(events)] == spoken()
    (drop,) = [event for event in events if isinstance(event, Reconnected)]
    assert "injected fault" in (drop.reason or "")

    refused, connections = await with_backend(FaultySTT(InvalidRequest("this audio is refused")))
    assert isinstance(refused, InvalidRequest) and "refused" in refused.message  # an input_error
    assert connections == 1


async def test_a_key_refused_at_the_reconnect_is_not_retried(front: tuple[LiveServer, ChaosProxy]) -> None:
    live, proxy = front
    stt = elevenlabs(proxy)
    try:
        async with stt.stream(format="pcm_8000") as stream:
            await stream.send_audio(AUDIO[: FLUSH_AT[0]])
            await asyncio.wait_for(stream.flush(), 5)
            live.app.state.front.keys.api_keys = frozenset({"another_key"})  # the key is revoked
            proxy.cut_open()
            with pytest.raises(AuthenticationError):
                await asyncio.wait_for(stream.collect(), 5)
    finally:
        await stt.aclose()
    assert proxy.connections == 2


async def test_a_turn_ended_after_a_drop_keeps_its_text_and_time(front: tuple[LiveServer, ChaosProxy]) -> None:
    """With ElevenLabs' own commits (vad), the turn's text committed in one session ends the turn in the next, at the
    time of its last word in the stream's timeline."""
    _, proxy = front
    stt = elevenlabs(proxy, commit_strategy="vad")
    lead_s = 0.5
    try:
        async with stt.stream(format="pcm_8000") as stream:
            await stream.send_audio(bytes(round(lead_s * RATE) * 2))
            assert await asyncio.wait_for(stream.flush(), 5) == Flushed(1)
            assert proxy.cut_open() == 1  # the next session starts at lead_s
            await stream.send_audio(AUDIO[: FLUSH_AT[0]])
            assert await asyncio.wait_for(stream.flush(), 5) == Flushed(2)
            assert proxy.cut_open() == 1
            await stream.send_audio(bytes(8000))
            await stream.end()
            events = await asyncio.wait_for(stream.collect(), 10)
    finally:
        await stt.aclose()
    (first,) = [event for event in events if isinstance(event, Transcript) and event.is_final]
    (turn,) = [event for event in events if isinstance(event, TurnEnded)]
    assert first.text == turn.text == "alpha bravo charlie"
    assert first.end_s == pytest.approx(lead_s + PAUSE_ENDS[0] - 0.6, abs=0.01)
    assert turn.time_s == pytest.approx(first.end_s)
    assert len([event for event in events if isinstance(event, Reconnected)]) == 2 and proxy.connections == 3
