"""CartesiaSTT streams survive dropped sockets: the Cartesia front on 127.0.0.1 behind a ChaosProxy that cuts them.

The runs go through :class:`speechbridge.testing.drops.DropTest`: a replay that skipped, repeated or misplaced audio
changes the words or their times, and the runs below would fail (the control with replay off shows it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import pytest
from speechbridge_cartesia.server import make_app
from speechbridge_cartesia.stt import CartesiaSTT

from speechbridge.errors import AuthenticationError, InvalidRequest, ProviderError, TransportError
from speechbridge.events import StreamEnded
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

KEY: Final = "sk_car_reconnect_key"
SPEECH: Final = DropSpeech.of()
AUDIO, FLUSH_AT = SPEECH.audio.data, SPEECH.flush_at
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)
RUNS: Final = 100
CLOSING_BYTES: Final = 64  # a cut within the close handshake, after "done" arrived, is no drop of the stream
TIME_TOLERANCE_S: Final = 1e-6


def cartesia(url: str, reliability: Reliability = FAST, **options: Any) -> CartesiaSTT:
    return CartesiaSTT(api_key=KEY, base_url=url, reliability=reliability, **options)


def front_app(backend: STTProvider[Any] | None = None) -> Any:
    return make_app(backend or SPEECH.recognizer(), None, api_keys=[KEY])


def drop_test(app: Any = None, connect: Callable[[str], CartesiaSTT] = cartesia) -> DropTest:
    return DropTest(app or front_app(), connect, SPEECH, seed=2025)


@pytest.fixture
async def front() -> AsyncIterator[DropTest]:
    async with drop_test() as drops:
        yield drops


async def test_a_hundred_runs_with_random_drops_give_the_uninterrupted_transcript(front: DropTest) -> None:
    # 1 or 2 cuts, each anywhere from just after the session opened to the "done" that ends the run
    await check_random_drops(
        front,
        range(RUNS),
        window=lambda clean: (1000, clean.bytes - CLOSING_BYTES),
        time_tolerance_s=TIME_TOLERANCE_S,
    )


async def test_the_same_runs_without_replay_lose_words() -> None:
    """The control: with replay off, the harness above sees missing words, so it can fail."""
    no_replay = Reliability(reconnects=5, backoff_s=0.001, replay_limit_s=0)
    async with drop_test(connect=lambda url: cartesia(url, no_replay)) as drops:
        await check_replay_off_loses_words(drops, range(20), at_least=15)


async def test_finalizes_and_close_pending_on_a_dead_socket_are_answered_in_order_after_the_reconnect() -> None:
    """A stalled socket is found dead by its pings; the new one answers the finalizes and the close sent again."""
    watchful = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002, dead_peer_timeout_s=0.4)
    async with drop_test(connect=lambda url: cartesia(url, watchful)) as drops:
        await check_stalled_flushes(drops, pending_flushes=2)


async def test_past_the_budget_the_stream_fails_with_the_transport_error() -> None:
    budget = Reliability(reconnects=2, backoff_s=0.001, max_backoff_s=0.002)
    async with drop_test(connect=lambda url: cartesia(url, budget)) as drops:
        with pytest.raises(TransportError) as caught:
            await drops.run(cuts=10, after=(1000, 3000))  # every socket dies before any result comes back
    assert drops.proxy.connections == 3
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)


async def test_a_normal_close_before_done_is_a_drop() -> None:
    closing = NormalCloseOnce(front_app(), lambda text: text == "close")
    async with drop_test(closing) as drops:
        run = await drops.run(audio=AUDIO[: SPEECH.speech_end])
    assert closing.closed == 1 and drops.proxy.connections == 2
    assert run.texts == list(SPEECH.words)  # "tango" is final only after "close"
    (drop,) = run.reconnects
    assert "code 1000" in (drop.reason or "") and isinstance(run.events[-1], StreamEnded)


async def test_a_server_fault_is_survived_and_a_refusal_is_not_retried() -> None:
    async with drop_test(
        front_app(SPEECH.recognizer(fails_with=ProviderError("injected fault", retryable=True)))
    ) as drops:
        run = await drops.run()  # an error with status_code 500
    assert drops.proxy.connections == 2 and run.texts == list(SPEECH.words)
    (drop,) = run.reconnects
    assert "injected fault" in (drop.reason or "")

    async with drop_test(front_app(SPEECH.recognizer(fails_with=InvalidRequest("this audio is refused")))) as drops:
        with pytest.raises(InvalidRequest, match="refused"):  # an error with status_code 400
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
