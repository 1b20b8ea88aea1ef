"""GradiumSTT streams survive dropped sockets: the Gradium front on 127.0.0.1 behind a ChaosProxy that cuts them.

The runs go through :class:`speechbridge.testing.drops.DropTest`: a replay that skipped, repeated or misplaced audio
changes the words or their times, and the runs below would fail (the control with replay off shows it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import pytest
from speechbridge_gradium.server import make_app
from speechbridge_gradium.server.faults import Faults
from speechbridge_gradium.stt import GradiumSTT

from speechbridge.errors import InvalidRequest, TransportError
from speechbridge.events import Flushed, Reconnected, StreamEnded, STTEvent
from speechbridge.reliability import Reliability
from speechbridge.testing import LiveServer
from speechbridge.testing.drops import (
    DropSpeech,
    DropTest,
    check_random_drops,
    check_replay_off_loses_words,
    final_words,
    send_and_collect,
)

KEY: Final = "gd_test_key"
SPEECH: Final = DropSpeech.of()
AUDIO, FLUSH_AT = SPEECH.audio.data, SPEECH.flush_at
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)
RUNS: Final = 100
TIME_TOLERANCE_S: Final = 0.002  # the wire carries times in ms, rounded


def gradium(url: str, reliability: Reliability = FAST, **options: Any) -> GradiumSTT:
    return GradiumSTT(api_key=KEY, base_url=url + "/api", reliability=reliability, **options)


def drop_test(connect: Callable[[str], GradiumSTT]) -> DropTest:
    return DropTest(make_app(SPEECH.recognizer(), None, api_keys=[KEY]), connect, SPEECH, seed=2024)


@pytest.fixture
async def front() -> AsyncIterator[DropTest]:
    async with drop_test(lambda url: gradium(url, turn_detection=False)) as drops:
        yield drops


async def test_a_hundred_runs_with_random_drops_give_the_uninterrupted_transcript() -> None:
    async with drop_test(lambda url: gradium(url, turn_horizon_s=0.5)) as drops:
        # 1 or 2 cuts, each anywhere from just after the first request's setup to the end of the run
        await check_random_drops(
            drops,
            range(RUNS),
            window=lambda clean: (1500, clean.bytes),
            time_tolerance_s=TIME_TOLERANCE_S,
            check=lambda run: " ".join(run.turns) == " ".join(SPEECH.words),
        )


async def test_the_same_runs_without_replay_lose_words() -> None:
    """The control: with replay off, the harness above sees missing words, so it can fail."""
    no_replay = Reliability(reconnects=5, backoff_s=0.001, replay_limit_s=0)
    async with drop_test(lambda url: gradium(url, no_replay, turn_detection=False)) as drops:
        await check_replay_off_loses_words(drops, range(20), at_least=15)


async def test_multiplexed_streams_all_reconnect_through_the_pool(front: DropTest) -> None:
    live, proxy = front.server, front.proxy
    stt = gradium(proxy.url, multiplex=True, turn_detection=False)
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
        assert [text for text, _, _ in final_words(events)] == list(SPEECH.words)
        (reconnect,) = [event for event in events if isinstance(event, Reconnected)]
        assert reconnect.lost_s == 0 and reconnect.replayed_s > 0
    assert proxy.connections == 2  # every stream came back on one new shared socket
    assert live.app.state.front.connections == 2


async def test_a_flush_and_the_end_pending_on_a_dead_socket_complete_after_the_reconnect(
    front: DropTest,
) -> None:
    proxy = front.proxy
    async with front.stt.stream(format="pcm_8000") as stream:
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
    assert [text for text, _, _ in final_words(events)] == list(SPEECH.words)
    assert len([event for event in events if isinstance(event, Reconnected)]) == 2
    assert isinstance(events[-1], StreamEnded) and proxy.connections == 3


async def test_a_retryable_error_frame_is_survived_and_a_refusal_is_not() -> None:
    async def with_faults(faults: Faults) -> tuple[list[STTEvent] | Exception, int]:
        app = make_app(SPEECH.recognizer(), None, api_keys=[KEY], faults=faults)
        async with LiveServer(app) as live:
            stt = gradium(live.url, turn_detection=False)
            try:
                events = await send_and_collect(stt.stream(format="pcm_8000"), AUDIO, flush_at=FLUSH_AT)
                return events, app.state.front.connections
            except InvalidRequest as error:
                return error, app.state.front.connections
            finally:
                await stt.aclose()

    events, connections = await with_faults(Faults(error_after=20, connections=1))  # 1011: a server fault
    assert not isinstance(events, Exception) and connections == 2
    assert [text for text, _, _ in final_words(events)] == list(SPEECH.words)
    (reconnect,) = [event for event in events if isinstance(event, Reconnected)]
    assert "injected fault" in (reconnect.reason or "")

    refused, connections = await with_faults(Faults(error_after=20, error_code=1008, connections=1))
    assert isinstance(refused, InvalidRequest) and connections == 1  # a policy error is not retried


async def test_past_the_budget_the_stream_fails_with_the_transport_error() -> None:
    budget = Reliability(reconnects=2, backoff_s=0.001, max_backoff_s=0.002)
    async with drop_test(lambda url: gradium(url, budget, turn_detection=False)) as drops:
        with pytest.raises(TransportError) as caught:
            await drops.run(cuts=10, after=(1500, 3000))  # every connection dies before any text comes back
    assert drops.proxy.connections == 3
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)
