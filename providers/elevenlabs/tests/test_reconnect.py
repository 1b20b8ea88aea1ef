"""ElevenLabsSTT's own commits across a dropped socket: the ElevenLabs front on 127.0.0.1 behind a ChaosProxy.

The scenarios every vendor shares (random drops, replay off, dead peers, the budget, normal closes, faults, keys) are
in ``tests/test_reconnect_vendors.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

import pytest
from speechbridge_elevenlabs.server import make_app
from speechbridge_elevenlabs.stt import ElevenLabsSTT

from speechbridge.events import Flushed, Reconnected, Transcript, TurnEnded
from speechbridge.reliability import Reliability
from speechbridge.testing.drops import DropSpeech, DropTest

KEY: Final = "el_reconnect_key"
SPEECH: Final = DropSpeech.of()
AUDIO, FLUSH_AT = SPEECH.audio.data, SPEECH.flush_at
FAST: Final = Reliability(reconnects=5, backoff_s=0.001, max_backoff_s=0.002)


@pytest.fixture
async def front() -> AsyncIterator[DropTest]:
    app = make_app(SPEECH.recognizer(), None, api_keys=[KEY])
    async with DropTest(app, lambda url: ElevenLabsSTT(api_key=KEY, base_url=url), SPEECH, seed=2025) as drops:
        yield drops


async def test_a_turn_ended_after_a_drop_keeps_its_text_and_time(front: DropTest) -> None:
    """With ElevenLabs' own commits (vad), the turn's text committed in one session ends the turn in the next, at the
    time of its last word in the stream's timeline."""
    proxy = front.proxy
    stt = ElevenLabsSTT(api_key=KEY, base_url=proxy.url, reliability=FAST, commit_strategy="vad")
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
