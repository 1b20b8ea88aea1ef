"""GradiumSTT against the Gradium front (``server.make_app``) backed by the scripted STT, on 127.0.0.1.

The scripted STT hears one word of its script per ``MS_PER_WORD`` of voiced audio, so the test audio is tones (one
per word) and silence, and what comes back is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
from array import array
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Final, TypeVar

import pytest
import soundfile
from speechbridge_gradium.protocol import EndTextOut, TextOut
from speechbridge_gradium.server import make_app
from speechbridge_gradium.server.faults import Faults
from speechbridge_gradium.stt import GradiumSTT, TranscriptBuilder, _batch_input, input_format_for
from starlette.applications import Starlette

from speechbridge.audio import AudioFormat, PCMAudio, encode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProviderError,
    StreamClosed,
    TransportError,
)
from speechbridge.events import (
    Flushed,
    Ready,
    SpeechStarted,
    StreamEnded,
    Transcript,
    TurnEnded,
    VADUpdate,
    Word,
)
from speechbridge.stt import STTStream
from speechbridge.testing.scripted import ScriptedSTT
from speechbridge.testing.servers import LiveServer

T = TypeVar("T")
KEY: Final = "gd_test_key"
SCRIPT: Final = "hello world again and then some more words"
MS_PER_WORD: Final = 240.0
RATE: Final = 16000


def tones(words: int, rate: int = RATE) -> bytes:
    """``words`` words of voiced audio: a 440 Hz tone, MS_PER_WORD each."""
    count = round(words * MS_PER_WORD / 1000 * rate)
    samples = array("h", (round(9000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(count)))
    return samples.tobytes()


def silence(seconds: float, rate: int = RATE) -> bytes:
    return bytes(2 * round(seconds * rate))


async def within(awaitable: Awaitable[T], seconds: float = 10.0) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def events_until(stream: STTStream, kind: type[T]) -> list[Any]:
    """Events up to and including the first of ``kind``."""
    events: list[Any] = []

    async def read() -> None:
        async for event in stream:
            events.append(event)
            if isinstance(event, kind):
                return
        raise AssertionError(f"the stream ended without {kind.__name__}: {events}")

    await within(read())
    return events


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Starlette]]:
    app = make_app(ScriptedSTT(script=SCRIPT, ms_per_word=MS_PER_WORD), None, api_keys=[KEY])
    async with LiveServer(app) as live:
        yield live.url + "/api", app


@pytest.fixture
async def stt(server: tuple[str, Starlette]) -> AsyncIterator[GradiumSTT]:
    provider = GradiumSTT(api_key=KEY, base_url=server[0], turn_detection=False)
    yield provider
    await provider.aclose()


@contextlib.asynccontextmanager
async def faulty(faults: Faults) -> AsyncIterator[str]:
    """A Gradium front that injects ``faults``; yields its base URL."""
    app = make_app(ScriptedSTT(script=SCRIPT, ms_per_word=MS_PER_WORD), None, api_keys=[KEY], faults=faults)
    async with LiveServer(app) as live:
        yield live.url + "/api"


# --- formats and transcripts, without a server ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "input_format", "wire"),
    [
        ("pcm_16000", "pcm_16000", "pcm_16000"),
        ("pcm_24000", "pcm_24000", "pcm_24000"),  # explicit, never bare "pcm"
        ("mulaw_8000", "ulaw_8000", "mulaw_8000"),
        ("alaw_8000", "alaw_8000", "alaw_8000"),
        ("pcm_11025", "pcm_16000", "pcm_16000"),
        ("pcm_96000", "pcm_48000", "pcm_48000"),
        ("f32_24000", "pcm_24000", "pcm_24000"),
        ("pcm_16000x2", "pcm_16000", "pcm_16000"),
        ("mulaw_16000", "pcm_16000", "pcm_16000"),
        ("wav", "wav", "wav"),
        ("opus", "opus", "ogg_opus"),
    ],
)
def test_live_input_format_is_native_or_a_gradium_pcm_rate(format: str, input_format: str, wire: str) -> None:
    name, wire_format = input_format_for(AudioFormat.parse(format))
    assert name == input_format and wire_format == AudioFormat.parse(wire)


@pytest.mark.parametrize("format", ["flac", "mp3"])
def test_live_compressed_audio_is_refused_with_what_is_accepted(format: str) -> None:
    with pytest.raises(AudioFormatError, match="accepted: raw pcm"):
        input_format_for(AudioFormat.parse(format))


def test_batch_audio_is_sent_natively_or_converted() -> None:
    pcm = PCMAudio(tones(1), RATE)
    wav = encode(pcm, "wav")
    assert _batch_input(wav, AudioFormat("wav")) == (wav, "wav")
    assert _batch_input(pcm.data, pcm.format) == (pcm.data, "pcm_16000")
    ulaw = encode(pcm, "mulaw_8000")
    assert _batch_input(ulaw, AudioFormat.parse("mulaw_8000")) == (ulaw, "ulaw_8000")
    buffer = io.BytesIO()
    soundfile.write(buffer, [0.1, -0.1] * 800, RATE, format="WAV", subtype="FLOAT")
    data, name = _batch_input(buffer.getvalue(), AudioFormat("wav"))  # float WAV: Gradium reads integer PCM only
    assert name == "pcm_16000" and len(data) == 3200
    data, name = _batch_input(encode(pcm, "flac"), AudioFormat("flac"))
    assert name == "pcm_16000" and len(data) == len(pcm.data)
    data, name = _batch_input(encode(pcm, "pcm_11025"), AudioFormat.parse("pcm_11025"))
    assert name == "pcm_16000" and abs(len(data) - len(pcm.data)) <= 4
    with pytest.raises(AudioFormatError, match="truncated"):
        _batch_input(pcm.data + b"\x01", pcm.format)


def test_words_extend_the_interim_and_end_text_ends_a_word() -> None:
    builder = TranscriptBuilder("en")
    assert builder.add(TextOut("Hello", 0.5)) == Transcript(
        "Hello", False, 0.5, 0.5, (Word("Hello", 0.5, 0.5),), language="en"
    )
    builder.end_text(EndTextOut(0.8))
    interim = builder.add(TextOut("world", 1.0))
    assert interim.text == "Hello world" and interim.words[0] == Word("Hello", 0.5, 0.8)
    interim = builder.add(TextOut("again", 1.4))  # no end_text for "world": it ends where "again" starts
    assert interim.words[1] == Word("world", 1.0, 1.4)
    final = builder.finalize()
    assert final is not None and final.is_final and final.text == "Hello world again" and final.end_s == 1.4
    assert builder.finalize() is None


# --- REST -------------------------------------------------------------------------------------------------------


async def test_transcribe_wav_over_rest(stt: GradiumSTT) -> None:
    audio = PCMAudio(silence(0.2) + tones(3) + silence(0.3), RATE)
    result = await within(stt.transcribe(encode(audio, "wav"), language="en"))
    assert result.is_final and result.text == "hello world again" and result.language == "en"
    assert [word.text for word in result.words] == ["hello", "world", "again"]
    assert result.words[0].start_s == pytest.approx(0.2, abs=0.09)
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(result.words, result.words[1:], strict=False))
    assert result.end_s == pytest.approx(0.92, abs=0.09)


@pytest.mark.parametrize("format", ["pcm_16000", "mulaw_8000", "pcm_11025", "flac", "opus_48000"])
async def test_transcribe_any_format(stt: GradiumSTT, format: str) -> None:
    data = encode(PCMAudio(tones(2) + silence(0.3), RATE), format)
    result = await within(stt.transcribe(data, format=format))
    assert result.text == "hello world"


async def test_transcribe_silence_is_empty(stt: GradiumSTT) -> None:
    result = await within(stt.transcribe(PCMAudio(silence(1.0), RATE)))
    assert result == Transcript("", True)


async def test_rest_bad_key_is_an_authentication_error(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key="gd_wrong", base_url=server[0])
    with pytest.raises(AuthenticationError) as caught:
        await within(stt.transcribe(PCMAudio(tones(1), RATE)))
    assert caught.value.code == 1008 and not caught.value.retryable and "gd_wrong" not in str(caught.value)
    await stt.aclose()


@pytest.mark.parametrize(
    ("faults", "error_type", "retryable"),
    [
        (Faults(reject_setup=1011), ProviderError, True),
        (Faults(reject_setup=1003, error_message="unknown model"), InvalidRequest, False),
        (Faults(error_after=1), ProviderError, True),
        (Faults(drop_after=1), TransportError, True),
    ],
)
async def test_rest_failures_are_typed(faults: Faults, error_type: type[Exception], retryable: bool) -> None:
    async with faulty(faults) as url:
        stt = GradiumSTT(api_key=KEY, base_url=url)
        with pytest.raises(error_type) as caught:
            await within(stt.transcribe(PCMAudio(tones(3) + silence(0.3), RATE)))
        assert type(caught.value) is error_type and caught.value.retryable is retryable  # type: ignore[attr-defined]
        await stt.aclose()


# --- WebSocket --------------------------------------------------------------------------------------------------


async def test_stream_events_in_order(stt: GradiumSTT) -> None:
    audio = silence(0.16) + tones(3) + silence(0.3)
    async with stt.stream(format="pcm_16000", language="en") as stream:
        for start in range(0, len(audio), 999):  # odd chunks: the stream re-frames them to 80 ms
            await stream.send_audio(audio[start : start + 999])
        await stream.end()
        events = await within(stream.collect())
    assert isinstance(events[0], Ready) and events[0].request_id and events[0].sample_rate == RATE
    assert isinstance(events[-1], StreamEnded)
    updates = [event for event in events if isinstance(event, VADUpdate)]
    assert len(updates) == math.ceil(len(audio) / 2 / RATE / 0.08)
    assert [horizon for horizon, _ in updates[0].inactivity_prob] == [0.5, 1.0, 2.0, 3.0]
    assert all(u.speech_prob == pytest.approx(1 - u.inactivity_prob[0][1]) for u in updates)
    interims = [event.text for event in events if isinstance(event, Transcript) and not event.is_final]
    assert interims[:2] == ["hello", "hello world"]
    finals = [event for event in events if isinstance(event, Transcript) and event.is_final]
    assert [final.text for final in finals] == ["hello world again"]
    assert finals[0].language == "en" and finals[0].words[0].start_s == pytest.approx(0.16, abs=0.09)
    assert [event for event in events if isinstance(event, SpeechStarted)] == [SpeechStarted(finals[0].start_s)]  # type: ignore[arg-type]
    assert not [event for event in events if isinstance(event, TurnEnded)]


@pytest.mark.parametrize("format", ["pcm_11025", "mulaw_8000", "f32_24000"])
async def test_stream_converts_or_passes_the_callers_format(stt: GradiumSTT, format: str) -> None:
    audio = encode(PCMAudio(tones(2) + silence(0.2), RATE), format)
    async with stt.stream(format=format) as stream:
        await stream.send_audio(audio)
        await stream.end()
        events = await within(stream.collect())
    assert [e.text for e in events if isinstance(e, Transcript) and e.is_final] == ["hello world"]


async def test_flush_returns_on_the_matching_flushed_after_the_final(stt: GradiumSTT) -> None:
    async with stt.stream(format="pcm_16000") as stream:
        await stream.send_audio(tones(2))
        assert await within(stream.flush()) == Flushed(1)
        await stream.send_audio(tones(1))
        assert await within(stream.flush()) == Flushed(2)
        assert await within(stream.flush()) == Flushed(3)  # nothing new: confirmed all the same
        await stream.end()
        events = await within(stream.collect())
    finals_and_flushes = [e for e in events if isinstance(e, Flushed) or (isinstance(e, Transcript) and e.is_final)]
    assert finals_and_flushes == [
        Transcript("hello world", True, *_span(events, 0)),
        Flushed(1),
        Transcript("again", True, *_span(events, 1)),
        Flushed(2),
        Flushed(3),
    ]


def _span(events: list[Any], index: int) -> tuple[float | None, float | None, tuple[Word, ...]]:
    final = [e for e in events if isinstance(e, Transcript) and e.is_final][index]
    return final.start_s, final.end_s, final.words


async def test_semantic_vad_ends_the_turn_with_its_full_text(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key=KEY, base_url=server[0], turn_horizon_s=0.5, turn_threshold=0.5)
    try:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(3) + silence(1.0))
            first = await events_until(stream, TurnEnded)
            await stream.send_audio(tones(2) + silence(1.0))
            second = await events_until(stream, TurnEnded)
            await stream.send_audio(tones(1))
            await stream.end()
            rest = await within(stream.collect())
    finally:
        await stt.aclose()
    assert first[-1].text == "hello world again" and first[-1].reason == "semantic_vad"
    assert first[-1].time_s == pytest.approx(0.72, abs=0.09)
    assert [e.text for e in first if isinstance(e, Transcript) and e.is_final] == ["hello world again"]
    assert not [e for e in first if isinstance(e, Flushed)]  # the turn's own flush is not the caller's
    assert second[-1].text == "and then"
    assert [e.text for e in rest if isinstance(e, Transcript) and e.is_final] == ["some"]
    assert not [e for e in rest if isinstance(e, TurnEnded)]  # still talking when the stream ended


async def test_the_default_two_second_horizon_waits_longer(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key=KEY, base_url=server[0])
    try:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(2) + silence(1.2))
            assert await within(stream.flush()) == Flushed(1)  # 1.2 s of silence: no turn at the 2 s horizon yet
            await stream.send_audio(silence(1.2))
            events = await events_until(stream, TurnEnded)
            await stream.end()
    finally:
        await stt.aclose()
    assert [e for e in events if isinstance(e, TurnEnded)] == [
        TurnEnded("hello world", "semantic_vad", events[-1].time_s)
    ]
    turn_update = [e for e in events if isinstance(e, VADUpdate)][-1]
    assert turn_update.inactivity_at(2.0) >= 0.5  # type: ignore[operator]


async def test_a_turn_found_after_end_ends_with_the_stream(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key=KEY, base_url=server[0], turn_horizon_s=0.5)
    try:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(2) + silence(1.0))
            await stream.end()
            events = await within(stream.collect())
    finally:
        await stt.aclose()
    assert [type(e) for e in events[-2:]] == [TurnEnded, StreamEnded]
    assert events[-2] == TurnEnded("hello world", "semantic_vad", events[-2].time_s)  # type: ignore[union-attr]


async def test_without_waiting_for_ready_it_still_comes_first(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key=KEY, base_url=server[0], wait_for_ready=False, turn_detection=False)
    try:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(1))
            await stream.end()
            events = await within(stream.collect())
    finally:
        await stt.aclose()
    assert isinstance(events[0], Ready) and isinstance(events[-1], StreamEnded)


async def test_multiplexed_streams_share_one_socket(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key=KEY, base_url=server[0], multiplex=True, turn_detection=False)

    async def recognise(words: int) -> str:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(words) + silence(0.2))
            await stream.end()
            events = await within(stream.collect())
        return " ".join(e.text for e in events if isinstance(e, Transcript) and e.is_final)

    try:
        assert await asyncio.gather(recognise(1), recognise(2), recognise(3)) == [
            "hello",
            "hello world",
            "hello world again",
        ]
        assert server[1].state.front.connections == 1
        assert len(stt.pool.connections(stt.settings.ws_url + "/speech/asr")) == 1
        assert await recognise(2) == "hello world"  # the socket is reused
        assert server[1].state.front.connections == 1
    finally:
        await stt.aclose()


async def test_a_browser_token_is_used_instead_of_the_key(server: tuple[str, Starlette]) -> None:
    from speechbridge_gradium.account import create_token

    token = await create_token(KEY, base_url=server[0])
    stt = GradiumSTT(token=token.token, base_url=server[0], turn_detection=False)
    try:
        async with stt.stream(format="pcm_16000") as stream:
            await stream.end()
            assert isinstance((await within(stream.collect()))[-1], StreamEnded)
        with pytest.raises(AuthenticationError) as caught:  # single use: the same token cannot connect again
            async with stt.stream(format="pcm_16000"):
                pass
        assert token.token not in str(caught.value)
    finally:
        await stt.aclose()

    async def mint() -> str:
        return (await create_token(KEY, base_url=server[0])).token

    stt = GradiumSTT(token=mint, base_url=server[0], turn_detection=False)
    try:
        with pytest.raises(ConfigError, match="WebSockets only"):
            await stt.transcribe(PCMAudio(tones(1), RATE))
        for _ in range(2):
            async with stt.stream(format="pcm_16000") as stream:
                await stream.end()
                await within(stream.collect())
    finally:
        await stt.aclose()


# --- failures ---------------------------------------------------------------------------------------------------


async def test_a_bad_key_fails_the_stream_at_open_and_is_not_retryable(server: tuple[str, Starlette]) -> None:
    stt = GradiumSTT(api_key="gd_wrong", base_url=server[0])
    with pytest.raises(AuthenticationError) as caught:
        async with stt.stream(format="pcm_16000"):
            raise AssertionError("the stream must not open")
    assert caught.value.code == 1008 and not caught.value.retryable and "gd_wrong" not in str(caught.value)
    await stt.aclose()


async def test_an_error_frame_1011_is_a_retryable_provider_error() -> None:
    async with faulty(Faults(error_after=4)) as url:  # with no reconnect budget (reconnects: test_reconnect.py)
        stt = GradiumSTT(api_key=KEY, base_url=url, turn_detection=False, reliability={"reconnects": 0})
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(3))
            with pytest.raises(ProviderError) as caught:
                await within(stream.collect())
            assert type(caught.value) is ProviderError and caught.value.code == 1011 and caught.value.retryable
            with pytest.raises(ProviderError):
                await stream.send_audio(tones(1))
        await stt.aclose()


async def test_a_dropped_connection_is_a_transport_error() -> None:
    async with faulty(Faults(drop_after=3)) as url:  # with no reconnect budget (reconnects: test_reconnect.py)
        stt = GradiumSTT(api_key=KEY, base_url=url, turn_detection=False, reliability={"reconnects": 0})
        async with stt.stream(format="pcm_16000") as stream:
            await stream.send_audio(tones(3))
            with pytest.raises(TransportError):
                await within(stream.collect())
        await stt.aclose()


async def test_a_silent_server_times_out_waiting_for_ready() -> None:
    async with faulty(Faults(delay_s=2.0)) as url:
        stt = GradiumSTT(api_key=KEY, base_url=url, timeout_s=0.3)
        with pytest.raises(TransportError, match="no 'ready'"):
            async with stt.stream(format="pcm_16000"):
                pass
        await stt.aclose()


async def test_settings_are_rejected_before_connecting(server: tuple[str, Starlette]) -> None:
    with pytest.raises(ConfigError, match="delay_in_frames"):
        GradiumSTT(api_key=KEY, base_url=server[0], delay_in_frames=9)
    stt = GradiumSTT(api_key=KEY, base_url=server[0])
    with pytest.raises(ConfigError, match="language"):
        stt.stream(format="pcm_16000", language="xx")
    with pytest.raises(ConfigError, match="turn_threshold"):
        await stt.transcribe(PCMAudio(tones(1), RATE), turn_threshold=2)
    with pytest.raises(ConfigError, match="GRADIUM_API_KEY"):
        GradiumSTT(base_url=server[0]).stream(format="pcm_16000")
    with pytest.raises(AudioFormatError):
        stt.stream(format="mp3")
    assert server[1].state.front.connections == 0
    await stt.aclose()


async def test_a_closed_stream_refuses_audio(stt: GradiumSTT) -> None:
    stream = stt.stream(format="pcm_16000")
    async with stream:
        await stream.end()
        await within(stream.collect())
    with pytest.raises(StreamClosed):
        await stream.send_audio(tones(1))
