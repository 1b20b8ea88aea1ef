"""Deepgram, Cartesia and ElevenLabs STT streams survive dropped sockets, each against its own front on 127.0.0.1
behind a ChaosProxy that cuts them: one table, the same scenarios (Gradium, the reference, has its own file).

The runs go through :class:`speechbridge.testing.drops.DropTest`: a replay that skipped, repeated or misplaced audio
changes the words or their times, and the runs below would fail (the control with replay off shows it).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import attrs
import pytest

from speechbridge.errors import AudioFormatError, AuthenticationError, InvalidRequest, ProviderError, TransportError
from speechbridge.events import StreamEnded
from speechbridge.reliability import Reliability
from speechbridge.stt import STTProvider
from speechbridge.testing.drops import (
    DropRun,
    DropSpeech,
    DropTest,
    NormalCloseOnce,
    check_random_drops,
    check_replay_off_loses_words,
    check_stalled_flushes,
)

KEY: Final = "reconnect_test_key"
SPEECH: Final = DropSpeech.of()
AUDIO, FLUSH_AT = SPEECH.audio.data, SPEECH.flush_at
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)
RUNS: Final = 100
CLOSING_BYTES: Final = 64  # a cut within the close handshake, after the last answer arrived, is no drop of the stream


@attrs.frozen
class Vendor:
    """What differs from one vendor to the next in these scenarios."""

    name: str
    stt_class: str
    options: dict[str, Any] = attrs.field(factory=dict)
    time_tolerance_s: float = 1e-6  # Deepgram's wire rounds times to the millisecond
    turns_are_phrases: bool = False  # speech_final ends each phrase
    pending_flushes: int = 2
    closes_on: Callable[[str], bool] = lambda text: False  # the client's last message, that the front answers
    close_reason: str = "code 1000"
    normal_close_flush_at: list[int] | None = None  # None: the speech's own flush points
    refusal: type[Exception] = InvalidRequest

    def stt(self, url: str, reliability: Reliability = FAST) -> STTProvider[Any]:
        module = importlib.import_module(f"speechbridge_{self.name}.stt")
        provider: STTProvider[Any] = getattr(module, self.stt_class)(
            api_key=KEY, base_url=url, reliability=reliability, **self.options
        )
        return provider

    def app(self, backend: STTProvider[Any] | None = None) -> Any:
        make_app = importlib.import_module(f"speechbridge_{self.name}.server").make_app
        return make_app(backend or SPEECH.recognizer(), None, api_keys=[KEY])

    def drop_test(self, app: Any = None, reliability: Reliability = FAST) -> DropTest:
        return DropTest(app or self.app(), lambda url: self.stt(url, reliability), SPEECH, seed=2025)


VENDORS: Final = [
    Vendor(
        "deepgram",
        "DeepgramSTT",
        time_tolerance_s=0.002,
        turns_are_phrases=True,
        pending_flushes=1,
        closes_on=lambda text: "CloseStream" in text,  # answered by Metadata
        close_reason="before its Metadata",
        refusal=AudioFormatError,  # closed with 1008 DATA-0000
    ),
    Vendor("cartesia", "CartesiaSTT", closes_on=lambda text: text == "close"),  # answered by "done"
    Vendor(
        "elevenlabs",
        "ElevenLabsSTT",
        options={"commit_strategy": "manual"},  # commits on flush() and end() only ("vad" waits 0.3 s at the end)
        closes_on=lambda text: '"commit": true' in text,
        normal_close_flush_at=[],  # nothing is final before the commit
    ),
]


@pytest.fixture(params=VENDORS, ids=lambda vendor: vendor.name)
def vendor(request: pytest.FixtureRequest) -> Vendor:
    pytest.importorskip(f"speechbridge_{request.param.name}")
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def front(vendor: Vendor) -> AsyncIterator[DropTest]:
    async with vendor.drop_test() as drops:
        yield drops


async def test_a_hundred_runs_with_random_drops_give_the_uninterrupted_transcript(
    vendor: Vendor, front: DropTest
) -> None:
    turns = [" ".join(phrase) for phrase in SPEECH.phrases]
    check: Callable[[DropRun], bool] | None = (lambda run: run.turns == turns) if vendor.turns_are_phrases else None
    # 1 or 2 cuts, each anywhere from just after the session opened to the answer that ends the run
    await check_random_drops(
        front,
        range(RUNS),
        window=lambda clean: (1000, clean.bytes - CLOSING_BYTES),
        time_tolerance_s=vendor.time_tolerance_s,
        check=check,
    )


async def test_the_same_runs_without_replay_lose_words(vendor: Vendor) -> None:
    """The control: with replay off, the harness above sees missing words, so it can fail."""
    no_replay = Reliability(reconnects=5, backoff_s=0.001, replay_limit_s=0)
    async with vendor.drop_test(reliability=no_replay) as drops:
        await check_replay_off_loses_words(drops, range(20), at_least=15)


async def test_flushes_and_the_end_pending_on_a_dead_socket_are_answered_in_order_after_the_reconnect(
    vendor: Vendor,
) -> None:
    """A stalled socket is found dead by its pings; the new one answers the flushes and the end sent again."""
    watchful = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002, dead_peer_timeout_s=0.4)
    async with vendor.drop_test(reliability=watchful) as drops:
        await check_stalled_flushes(drops, pending_flushes=vendor.pending_flushes)


async def test_past_the_budget_the_stream_fails_with_the_transport_error(vendor: Vendor) -> None:
    budget = Reliability(reconnects=2, backoff_s=0.001, max_backoff_s=0.002)
    async with vendor.drop_test(reliability=budget) as drops:
        with pytest.raises(TransportError) as caught:
            await drops.run(cuts=10, after=(1000, 3000))  # every socket dies before any result comes back
    assert drops.proxy.connections == 3
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)


async def test_a_normal_close_before_the_last_answer_is_a_drop(vendor: Vendor) -> None:
    closing = NormalCloseOnce(vendor.app(), vendor.closes_on)
    async with vendor.drop_test(closing) as drops:
        run = await drops.run(audio=AUDIO[: SPEECH.speech_end], flush_at=vendor.normal_close_flush_at)
    assert closing.closed == 1 and drops.proxy.connections == 2
    assert run.texts == list(SPEECH.words)  # the last word is final only after that last message
    (drop,) = run.reconnects
    assert vendor.close_reason in (drop.reason or "") and isinstance(run.events[-1], StreamEnded)


async def test_a_server_fault_is_survived_and_a_refusal_is_not_retried(vendor: Vendor) -> None:
    async with vendor.drop_test(
        vendor.app(SPEECH.recognizer(fails_with=ProviderError("injected fault", retryable=True)))
    ) as drops:
        run = await drops.run()
    assert drops.proxy.connections == 2 and run.texts == list(SPEECH.words)
    (drop,) = run.reconnects
    assert "injected fault" in (drop.reason or "")

    async with vendor.drop_test(vendor.app(SPEECH.recognizer(fails_with=InvalidRequest("this audio is refused")))) as (
        drops
    ):
        with pytest.raises(vendor.refusal, match="refused"):
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
