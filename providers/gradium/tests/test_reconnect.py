"""GradiumSTT streams survive dropped sockets: the Gradium front on 127.0.0.1 behind a ChaosProxy that cuts them.

The front's backend is ``ScriptedSTT(vocabulary=...)``: it names each tone of the audio by its pitch, so a new request
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
from typing import Final

import pytest
from speechbridge_gradium.server import make_app
from speechbridge_gradium.server.faults import Faults
from speechbridge_gradium.stt import GradiumSTT

from speechbridge.errors import InvalidRequest, TransportError
from speechbridge.events import Flushed, Ready, Reconnected, StreamEnded, STTEvent, Transcript, TurnEnded
from speechbridge.reliability import Reliability
from speechbridge.stt import STTStream
from speechbridge.testing import ChaosProxy, LiveServer
from speechbridge.testing.scripted import ScriptedSTT, ScriptedTTSSettings, speak_phrases

KEY: Final = "gd_test_key"
RATE: Final = 8000
WORDS: Final = ("alpha", "bravo", "charlie", "echo", "hotel", "india", "juliet", "lima", "papa", "seven", "tango")
PHRASES: Final = (("alpha", "bravo", "charlie"), ("echo", "hotel"), ("india", "juliet", "lima", "papa"), ("tango",))
SPEECH, PAUSE_ENDS = speak_phrases(
    PHRASES, pause_s=0.6, settings=ScriptedTTSSettings(sample_rate=RATE, ms_per_char=25, gap_ms=60)
)
AUDIO: Final = SPEECH.data
FLUSH_AT: Final = [round(end * RATE) * 2 for end in PAUSE_ENDS[:-1]]
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)
RUNS: Final = 100
TIME_TOLERANCE_S: Final = 0.002  # the wire carries times in ms, rounded


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
    async with LiveServer(app) as live, ChaosProxy(live.url, seed=2024) as proxy:
        yield live, proxy


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
    stt = GradiumSTT(api_key=KEY, base_url=proxy.url + "/api", reliability=FAST, turn_horizon_s=0.5)
    try:
        clean = await run(stt.stream(format="pcm_8000"))
        baseline = final_words(clean)
        assert [text for text, _, _ in baseline] == spoken()
        run_bytes = proxy.bytes_forwarded
        started, failures, reconnects = time.perf_counter(), [], 0
        for seed in range(RUNS):
            proxy.clear()
            cuts_before = len(proxy.faults)
            # 1 or 2 cuts, each anywhere from just after the first request's setup to the end of the run
            proxy.cut(after=(1500, run_bytes), connections=random.Random(seed).randint(1, 2))
            events = await run(stt.stream(format="pcm_8000"))
            reconnected = [event for event in events if isinstance(event, Reconnected)]
            reconnects += len(reconnected)
            turns = " ".join(event.text for event in events if isinstance(event, TurnEnded))
            if not same_words(final_words(events), baseline) or turns != " ".join(spoken()):
                failures.append((seed, proxy.faults[cuts_before:], final_words(events), turns))
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
    no_replay = Reliability(reconnects=5, backoff_s=0.001, replay_limit_s=0)
    stt = GradiumSTT(api_key=KEY, base_url=proxy.url + "/api", reliability=no_replay, turn_detection=False)
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


async def test_multiplexed_streams_all_reconnect_through_the_pool(front: tuple[LiveServer, ChaosProxy]) -> None:
    live, proxy = front
    stt = GradiumSTT(api_key=KEY, base_url=proxy.url + "/api", reliability=FAST, multiplex=True, turn_detection=False)
    halfway = FLUSH_AT[1]

    async def recognise(ready: asyncio.Event, go: asyncio.Event) -> list[STTEvent]:
        async with stt.stream(format="pcm_8000") as stream:
            reader = asyncio.create_task(stream.collect())
            await stream.send_audio(AUDIO[:halfway])
            await asyncio.wait_for(stream.flush(), 5)
            await stream.send_audio(AUDIO[halfway : halfway + 8000])
            ready.set()
            await go.wait()
            await stream.send_audio(AUDIO[halfway + 8000 :])
            await stream.end()
            return await asyncio.wait_for(reader, 10)

    try:
        readies = [asyncio.Event() for _ in range(3)]
        go = asyncio.Event()
        tasks = [asyncio.create_task(recognise(ready, go)) for ready in readies]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 5)
        assert proxy.open_connections == 1  # three requests on one socket
        assert proxy.cut_open() == 1
        go.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    finally:
        await stt.aclose()
    for events in results:
        assert [text for text, _, _ in final_words(events)] == spoken()
        (reconnect,) = [event for event in events if isinstance(event, Reconnected)]
        assert reconnect.lost_s == 0 and reconnect.replayed_s > 0
    assert proxy.connections == 2  # every stream came back on one new shared socket
    assert live.app.state.front.connections == 2


async def test_a_flush_and_the_end_pending_on_a_dead_socket_complete_after_the_reconnect(
    front: tuple[LiveServer, ChaosProxy],
) -> None:
    _, proxy = front
    stt = GradiumSTT(api_key=KEY, base_url=proxy.url + "/api", reliability=FAST, turn_detection=False)
    try:
        async with stt.stream(format="pcm_8000") as stream:
            await stream.send_audio(AUDIO[: FLUSH_AT[0]])
            assert await asyncio.wait_for(stream.flush(), 5) == Flushed(1)
            await stream.send_audio(AUDIO[FLUSH_AT[0] : FLUSH_AT[1]])
            assert proxy.stall_open() == 1  # the peer stops answering: what a dead-peer timeout would find
            flush = asyncio.create_task(stream.flush())
            await asyncio.sleep(0.05)
            assert not flush.done()
            proxy.cut_open()  # the dead peer is found
            assert await asyncio.wait_for(flush, 5) == Flushed(2)
            await stream.send_audio(AUDIO[FLUSH_AT[1] :])
            proxy.stall_open()
            await stream.end()
            await asyncio.sleep(0.05)
            proxy.cut_open()
            events = await asyncio.wait_for(stream.collect(), 10)
    finally:
        await stt.aclose()
    assert [text for text, _, _ in final_words(events)] == spoken()
    assert len([event for event in events if isinstance(event, Reconnected)]) == 2
    assert isinstance(events[-1], StreamEnded) and proxy.connections == 3


async def test_a_retryable_error_frame_is_survived_and_a_refusal_is_not() -> None:
    async def with_faults(faults: Faults) -> tuple[list[STTEvent] | Exception, int]:
        app = make_app(ScriptedSTT(vocabulary=WORDS, sample_rate=RATE), None, api_keys=[KEY], faults=faults)
        async with LiveServer(app) as live:
            stt = GradiumSTT(api_key=KEY, base_url=live.url + "/api", reliability=FAST, turn_detection=False)
            try:
                return await run(stt.stream(format="pcm_8000")), app.state.front.connections
            except InvalidRequest as error:
                return error, app.state.front.connections
            finally:
                await stt.aclose()

    events, connections = await with_faults(Faults(error_after=20, connections=1))  # 1011: a server fault
    assert not isinstance(events, Exception) and connections == 2
    assert [text for text, _, _ in final_words(events)] == spoken()
    (reconnect,) = [event for event in events if isinstance(event, Reconnected)]
    assert "injected fault" in (reconnect.reason or "")

    refused, connections = await with_faults(Faults(error_after=20, error_code=1008, connections=1))
    assert isinstance(refused, InvalidRequest) and connections == 1  # a policy error is not retried


async def test_past_the_budget_the_stream_fails_with_the_transport_error(front: tuple[LiveServer, ChaosProxy]) -> None:
    _, proxy = front
    budget = Reliability(reconnects=2, backoff_s=0.001, max_backoff_s=0.002)
    stt = GradiumSTT(api_key=KEY, base_url=proxy.url + "/api", reliability=budget, turn_detection=False)
    proxy.cut(after=(1500, 3000), connections=10)  # every connection dies before any text comes back
    try:
        with pytest.raises(TransportError) as caught:
            await run(stt.stream(format="pcm_8000"))
    finally:
        await stt.aclose()
    assert proxy.connections == 3
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)
