"""ElevenLabsSTT streams survive dropped sockets: the ElevenLabs front on 127.0.0.1 behind a ChaosProxy that cuts
them.

The runs go through :class:`speechbridge.testing.drops.DropTest`: a replay that skipped, repeated or misplaced audio
changes the words or their times, and the runs below would fail (the control with replay off shows it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import pytest
from speechbridge_elevenlabs.server import make_app
from speechbridge_elevenlabs.stt import ElevenLabsSTT

from speechbridge.errors import AuthenticationError, InvalidRequest, ProviderError, TransportError
from speechbridge.events import Flushed, Reconnected, StreamEnded, Transcript, TurnEnded
from speechbridge.reliability import Reliability
from speechbridge.stt import STTProvider
from speechbridge.testing.drops import (
    DropSpeech,
    DropTest,
    NormalCloseOnce,
    check_random_drops,
    check_replay_off_loses_words,
    check_stalled_flushes,
)

KEY: Final = "el_reconnect_key"
SPEECH: Final = DropSpeech.of()
AUDIO, FLUSH_AT = SPEECH.audio.data, SPEECH.flush_at
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)
RUNS: Final = 100
CLOSING_BYTES: Final = 64  # a cut within the close handshake, after the last commit's answer, is no drop
TIME_TOLERANCE_S: Final = 1e-6


def elevenlabs(url: str, reliability: Reliability = FAST, **options: Any) -> ElevenLabsSTT:
    """A client committing on flush() and end() only (``commit_strategy="vad"`` waits 0.3 s at the end for more)."""
    return ElevenLabsSTT(api_key=KEY, base_url=url, reliability=reliability, **{"commit_strategy": "manual", **options})


def front_app(backend: STTProvider[Any] | None = None) -> Any:
    return make_app(backend or SPEECH.recognizer(), None, api_keys=[KEY])


def drop_test(app: Any = None, connect: Callable[[str], ElevenLabsSTT] = elevenlabs) -> DropTest:
    return DropTest(app or front_app(), connect, SPEECH, seed=2025)


@pytest.fixture
async def front() -> AsyncIterator[DropTest]:
    async with drop_test() as drops:
        yield drops


async def test_a_hundred_runs_with_random_drops_give_the_uninterrupted_transcript(front: DropTest) -> None:
    # 1 or 2 cuts, each anywhere from just after the session opened to the answer to the commit of end()
    await check_random_drops(
        front,
        range(RUNS),
        window=lambda clean: (1000, clean.bytes - CLOSING_BYTES),
        time_tolerance_s=TIME_TOLERANCE_S,
    )


async def test_the_same_runs_without_replay_lose_words() -> None:
    """The control: with replay off, the harness above sees missing words, so it can fail."""
    no_replay = Reliability(reconnects=5, backoff_s=0.001, replay_limit_s=0)
    async with drop_test(connect=lambda url: elevenlabs(url, no_replay)) as drops:
        await check_replay_off_loses_words(drops, range(20), at_least=15)


async def test_commits_pending_on_a_dead_socket_are_answered_in_order_after_the_reconnect() -> None:
    """A stalled socket is found dead by its pings; the new one answers the commits (flushes, end) sent again."""
    watchful = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002, dead_peer_timeout_s=0.4)
    async with drop_test(connect=lambda url: elevenlabs(url, watchful)) as drops:
        await check_stalled_flushes(drops, pending_flushes=2)


async def test_past_the_budget_the_stream_fails_with_the_transport_error() -> None:
    budget = Reliability(reconnects=2, backoff_s=0.001, max_backoff_s=0.002)
    async with drop_test(connect=lambda url: elevenlabs(url, budget)) as drops:
        with pytest.raises(TransportError) as caught:
            await drops.run(cuts=10, after=(1000, 3000))  # every socket dies before any result comes back
    assert drops.proxy.connections == 3
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)


async def test_a_normal_close_before_the_end_is_answered_is_a_drop() -> None:
    closing = NormalCloseOnce(front_app(), lambda text: '"commit": true' in text)
    async with drop_test(closing) as drops:
        run = await drops.run(audio=AUDIO[: SPEECH.speech_end], flush_at=[])
    assert closing.closed == 1 and drops.proxy.connections == 2
    assert run.texts == list(SPEECH.words)  # nothing is final before the commit
    (drop,) = run.reconnects
    assert "code 1000" in (drop.reason or "") and isinstance(run.events[-1], StreamEnded)


async def test_a_server_fault_is_survived_and_a_refusal_is_not_retried() -> None:
    async with drop_test(
        front_app(SPEECH.recognizer(fails_with=ProviderError("injected fault", retryable=True)))
    ) as drops:
        run = await drops.run()  # a transcriber_error, close 1011
    assert drops.proxy.connections == 2 and run.texts == list(SPEECH.words)
    (drop,) = run.reconnects
    assert "injected fault" in (drop.reason or "")

    async with drop_test(front_app(SPEECH.recognizer(fails_with=InvalidRequest("this audio is refused")))) as drops:
        with pytest.raises(InvalidRequest, match="refused"):  # an input_error
            await drops.run()
    assert drops.proxy.connections == 1


async def test_a_key_refused_at_the_reconnect_is_not_retried(front: DropTest) -> None:
    async with front.stt.stream(format="pcm_8000") as stream:
        await stream.send_audio(AUDIO[: FLUSH_AT[0]])
        await asyncio.wait_for(stream.flush(), 5)
        front.server.app.state.front.keys.api_keys = frozenset({"another_key"})  # the key is revoked
        front.proxy.cut_open()
        with pytest.raises(AuthenticationError):
            await asyncio.wait_for(stream.collect(), 5)
    assert front.proxy.connections == 2


async def test_a_turn_ended_after_a_drop_keeps_its_text_and_time(front: DropTest) -> None:
    """With ElevenLabs' own commits (vad), the turn's text committed in one session ends the turn in the next, at the
    time of its last word in the stream's timeline."""
    proxy = front.proxy
    stt = elevenlabs(proxy.url, commit_strategy="vad")
    lead_s = 0.5
    try:
        async with stt.stream(format="pcm_8000") as stream:
            await stream.send_audio(bytes(round(lead_s * SPEECH.audio.sample_rate) * 2))
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
    assert first.end_s == pytest.approx(lead_s + SPEECH.pause_ends_s[0] - SPEECH.pause_s, abs=0.01)
    assert turn.time_s == pytest.approx(first.end_s)
    assert len([event for event in events if isinstance(event, Reconnected)]) == 2 and proxy.connections == 3
