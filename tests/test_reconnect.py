"""Live STT streams that survive dropped connections (the base stream's replay), and the ChaosProxy that drops them.

The backend here is an in-process "vendor" whose every session is a fresh :class:`ScriptedRecognizer` in vocabulary
mode, fed by a background task as a socket would be: it hears words from the audio's content (each word a tone of its
own pitch), so a session that starts in the middle of the stream hears what is there, and a replay that skipped or
repeated audio would show in the transcript.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterable, Sequence
from typing import Any, Final

import pytest

from speechbridge.audio import AudioFormat, PCMAudio
from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    ProtocolError,
    RateLimitError,
    StreamClosed,
    TransportError,
)
from speechbridge.events import (
    Flushed,
    Ready,
    Reconnected,
    SpeechStarted,
    StreamEnded,
    STTEvent,
    Transcript,
    TurnEnded,
    VADUpdate,
)
from speechbridge.reliability import Reliability
from speechbridge.streams import StreamState
from speechbridge.stt import STTStream
from speechbridge.testing import ChaosProxy
from speechbridge.testing.chaos import Fault
from speechbridge.testing.scripted import (
    ScriptedRecognizer,
    ScriptedSTT,
    ScriptedSTTSettings,
    ScriptedTTSSettings,
    ToneSpeaker,
    speak_phrases,
    tone_frequency,
)

RATE: Final = 8000
WIRE: Final = AudioFormat.pcm16(RATE)
FRAME: Final = 1280  # 80 ms at 8 kHz
PAUSE_S: Final = 0.6  # longer than the recognizer's turn_silence_ms: each phrase is a turn
WORDS: Final = ("alpha", "bravo", "charlie", "echo", "hotel", "india", "juliet", "lima", "papa", "seven", "tango")
PHRASES: Final = (("alpha", "bravo", "charlie"), ("echo", "hotel"), ("india", "juliet", "lima", "papa"), ("tango",))
FAST: Final = Reliability(reconnects=3, backoff_s=0.001, max_backoff_s=0.002)


SPEAKER: Final = ScriptedTTSSettings(sample_rate=RATE, ms_per_char=25, gap_ms=60)


def speak(phrases: Iterable[Sequence[str]]) -> tuple[bytes, list[int]]:
    """Tones for ``phrases`` with a pause after each, and the byte offset of the end of each pause."""
    audio, ends = speak_phrases(phrases, pause_s=PAUSE_S, settings=SPEAKER)
    return audio.data, [round(end * RATE) * 2 for end in ends]


AUDIO, PHRASE_ENDS = speak(PHRASES)
MONOLOGUE, _ = speak([WORDS])  # 2 s of words without a pause: nothing is final before its end


class Session:
    """One connection of :class:`FlakySTTStream`: what it received, and whether it is still up."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.received: list[tuple[str, Any]] = []
        self.alive = True
        self.error: Exception | None = None  # why it died: what its sends raise from then on

    @property
    def audio(self) -> bytes:
        return b"".join(value for kind, value in self.received if kind == "audio")


class FlakySTTStream(STTStream):
    """An in-process vendor whose connections drop on cue.

    Session ``i`` drops (fails with ``drop_error``) when message number ``drops[i]`` reaches it (None: never);
    ``open_failures`` are raised by the next reopens.
    """

    reconnectable = True

    def __init__(
        self,
        reliability: Reliability | None = FAST,
        *,
        drops: Iterable[int | None] = (),
        open_failures: Iterable[Exception] = (),
        drop_error: Exception | None = None,
        wire_format: AudioFormat = WIRE,
    ) -> None:
        super().__init__("flaky", format=wire_format, wire_format=wire_format, reliability=reliability)
        self.settings = ScriptedSTTSettings(vocabulary=WORDS, sample_rate=RATE)
        self.drops = list(drops)
        self.open_failures = list(open_failures)
        self.drop_error = drop_error or TransportError("the connection closed without a close frame", provider="flaky")
        self.sessions: list[Session] = []
        self.open_delay_s = 0.0
        self.closes = 0
        self._current: Session | None = None

    async def _open(self) -> None:
        if self.open_delay_s:
            await asyncio.sleep(self.open_delay_s)
        if self.open_failures and self.sessions:
            raise self.open_failures.pop(0)
        session = Session(self.drops.pop(0) if self.drops else None)
        self.sessions.append(session)
        self._current = session
        self._emit(Ready(request_id=f"session-{len(self.sessions)}"))
        self._spawn(self._serve(session, ScriptedRecognizer(self.settings)))

    async def _send_frame(self, frame: bytes) -> None:
        await self._deliver("audio", frame)

    async def _send_flush(self, flush_id: int) -> None:
        await self._deliver("flush", flush_id)

    async def _send_end(self) -> None:
        await self._deliver("end", None)

    async def _close(self) -> None:
        self.closes += 1
        if self._current is not None:
            self._current.alive = False

    async def _deliver(self, kind: str, value: Any) -> None:
        session = self._current
        assert session is not None
        if not session.alive:
            raise session.error or TransportError("the connection is closed", provider="flaky")
        session.inbox.put_nowait((kind, value))
        await asyncio.sleep(0)  # the "server" works concurrently with the sender

    async def _serve(self, session: Session, recognizer: ScriptedRecognizer) -> None:
        try:
            while True:
                kind, value = await session.inbox.get()
                if session.limit is not None and len(session.received) >= session.limit:
                    session.error = self.drop_error
                    raise self.drop_error
                session.received.append((kind, value))
                events = recognizer.feed(value) if kind == "audio" else recognizer.finish()
                for event in events:
                    self._emit(event)
                if kind == "flush":
                    self._emit(Flushed(value))
                elif kind == "end":
                    self._emit(StreamEnded())
                    return
        finally:
            session.alive = False


async def run(
    stream: STTStream, audio: bytes = AUDIO, *, flush_at: Iterable[int] = (), chunk: int = 1000
) -> list[STTEvent]:
    """Send ``audio`` in chunks, flushing at the given byte offsets, while reading events; then end. Every event."""
    async with stream:
        reader = asyncio.create_task(stream.collect())
        try:
            start = 0
            for stop in [*flush_at, len(audio)]:
                for offset in range(start, stop, chunk):
                    await stream.send_audio(audio[offset : min(offset + chunk, stop)])
                if stop < len(audio):
                    await asyncio.wait_for(stream.flush(), 5)
                start = stop
            await stream.end()
            return await asyncio.wait_for(reader, 5)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def final_words(events: Iterable[STTEvent]) -> list[tuple[str, float, float]]:
    return [
        (word.text, round(word.start_s, 6), round(word.end_s, 6))
        for event in events
        if isinstance(event, Transcript) and event.is_final
        for word in event.words
    ]


@pytest.fixture(scope="module")
def clean_run() -> tuple[list[tuple[str, float, float]], list[tuple[str, Any]]]:
    """The final words of a run without drops, and the messages its one session received."""
    stream = FlakySTTStream()
    events = asyncio.run(run(stream, flush_at=PHRASE_ENDS[:-1]))
    words = final_words(events)
    assert [text for text, _, _ in words] == [word for phrase in PHRASES for word in phrase]
    return words, stream.sessions[0].received


@pytest.fixture(scope="module")
def uninterrupted(clean_run: tuple[list[Any], list[Any]]) -> list[tuple[str, float, float]]:
    return clean_run[0]


# --- surviving drops --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
async def test_drops_at_random_points_leave_the_transcript_unchanged(
    seed: int, clean_run: tuple[list[tuple[str, float, float]], list[Any]]
) -> None:
    uninterrupted, messages = clean_run
    rng = random.Random(seed)
    drops = [rng.randrange(len(messages)) for _ in range(rng.randint(1, 3))]
    stream = FlakySTTStream(drops=drops)
    events = await run(stream, flush_at=PHRASE_ENDS[:-1])
    assert final_words(events) == uninterrupted
    reconnects = [event for event in events if isinstance(event, Reconnected)]
    assert len(reconnects) == len(stream.sessions) - 1 >= 1  # the first drop always fires: it is within the audio
    assert [type(event) for event in events].count(Ready) == 1
    assert all(reconnect.lost_s == 0 for reconnect in reconnects)


async def test_the_replay_starts_at_the_committed_point_and_resends_exactly_the_rest(
    uninterrupted: list[tuple[str, float, float]],
) -> None:
    stream = FlakySTTStream(drops=[30])
    async with stream:
        await stream.send_audio(AUDIO[: PHRASE_ENDS[0]])
        assert await asyncio.wait_for(stream.flush(), 5) == Flushed(1)  # messages 1-16
        await stream.send_audio(AUDIO[PHRASE_ENDS[0] : PHRASE_ENDS[1]])  # 17-27: "echo hotel" is final at its pause
        await stream.send_audio(AUDIO[PHRASE_ENDS[1] : PHRASE_ENDS[1] + 4 * FRAME])  # the 31st message meets the drop
        events = await asyncio.wait_for(events_until(stream, Reconnected), 5)
        sent = stream.wire_bytes_sent
        await stream.send_audio(AUDIO[PHRASE_ENDS[1] + 4 * FRAME :])
        await stream.end()
        events += await asyncio.wait_for(stream.collect(), 5)
    finals = [event for event in events if isinstance(event, Transcript) and event.is_final]
    assert [final.text for final in finals] == ["alpha bravo charlie", "echo hotel", "india juliet lima papa", "tango"]
    committed = round(finals[1].end_s * RATE)  # type: ignore[operator]
    reconnect = next(event for event in events if isinstance(event, Reconnected))
    assert reconnect == Reconnected(1, (sent / 2 - committed) / RATE, 0.0, reconnect.reason)
    assert stream.session_start_s == committed / RATE
    first, second = stream.sessions
    assert len(first.received) == 30 and second.audio == AUDIO[2 * committed :]
    assert [kind for kind, _ in second.received].count("flush") == 0  # flush 1 was confirmed: not sent again
    assert final_words(events) == uninterrupted


async def test_without_replay_the_words_before_the_drop_are_lost() -> None:
    """The negative control: the same drop loses words when replay is off, so the tests above can fail."""

    async def monologue(reliability: Reliability, drops: list[int | None]) -> tuple[list[Any], Reconnected | None]:
        stream = FlakySTTStream(reliability, drops=drops)
        async with stream:
            await stream.send_audio(MONOLOGUE[: 21 * FRAME])  # the 21st frame meets the drop
            events = await asyncio.wait_for(events_until(stream, Reconnected), 5) if drops else []
            await stream.send_audio(MONOLOGUE[21 * FRAME :])
            await stream.end()
            events += await asyncio.wait_for(stream.collect(), 5)
        reconnect = next((event for event in events if isinstance(event, Reconnected)), None)
        return final_words(events), reconnect

    clean, _ = await monologue(FAST, [])
    replayed, with_replay = await monologue(FAST, [20])
    lossy, without_replay = await monologue(Reliability(reconnects=3, backoff_s=0.001, replay_limit_s=0), [20])
    assert [text for text, _, _ in clean] == list(WORDS)
    assert replayed == clean and with_replay is not None and with_replay.lost_s == 0
    assert without_replay is not None and without_replay.lost_s == pytest.approx(21 * 0.08)
    assert without_replay.replayed_s == 0
    assert len(lossy) <= len(clean) - 6  # the words of the first 1.68 s are gone
    assert [text for text, _, _ in lossy] == [text for text, _, _ in clean][-len(lossy) :]
    assert set(lossy[1:]) < set(clean)  # in the right place too, but for the word cut in two by the drop


async def test_times_after_a_reconnect_continue_the_stream_timeline() -> None:
    stream = FlakySTTStream(drops=[20])
    events = await run(stream, flush_at=[PHRASE_ENDS[0]])
    index = next(i for i, event in enumerate(events) if isinstance(event, Reconnected))
    committed_s = PHRASE_ENDS[0] / 2 / RATE
    assert stream.session_start_s == pytest.approx(committed_s)
    after = events[index + 1 :]
    vad = [event.time_s for event in after if isinstance(event, VADUpdate)]
    assert vad[0] == pytest.approx(committed_s + 0.08) and vad == sorted(vad)
    assert vad[-1] == pytest.approx(len(AUDIO) / 2 / RATE, abs=0.08)
    starts = [event.time_s for event in after if isinstance(event, SpeechStarted)]
    assert starts and all(time >= committed_s for time in starts)
    turns = [event.time_s for event in after if isinstance(event, TurnEnded)]
    assert turns and all(time is not None and time > committed_s for time in turns)
    finals = [event for event in after if isinstance(event, Transcript) and event.is_final]
    assert finals[0].start_s is not None and finals[0].start_s > committed_s


async def test_a_pending_flush_completes_across_the_reconnect() -> None:
    stream = FlakySTTStream(drops=[10])  # the flush is message 11: it reaches a dead session
    async with stream:
        await stream.send_audio(AUDIO[: 10 * FRAME])
        flushed = await asyncio.wait_for(stream.flush(), 5)
        events = await events_until(stream, Flushed)
        await stream.end()
        events += await asyncio.wait_for(stream.collect(), 5)
    assert flushed == Flushed(1)
    assert [kind for kind, _ in stream.sessions[1].received].count("flush") == 1
    assert [type(event) for event in events].index(Reconnected) < [type(event) for event in events].index(Flushed)


async def events_until(stream: STTStream, kind: type[Any]) -> list[STTEvent]:
    events: list[STTEvent] = []
    async for event in stream:
        events.append(event)
        if isinstance(event, kind):
            break
    return events


async def test_audio_sent_while_reconnecting_goes_out_after_the_replay_in_order() -> None:
    stream = FlakySTTStream(drops=[5])
    async with stream:
        stream.open_delay_s = 0.05  # the new session takes its time to open
        await stream.send_audio(AUDIO[: 6 * FRAME])
        await asyncio.sleep(0.01)
        assert stream.sessions[0].alive is False
        for offset in range(6 * FRAME, len(AUDIO), 777):
            await stream.send_audio(AUDIO[offset : offset + 777])  # returns at once: queued for the new session
        assert len(stream.sessions) == 1
        await stream.end()
        events = await asyncio.wait_for(stream.collect(), 5)
    assert stream.sessions[1].audio == AUDIO
    assert [kind for kind, _ in stream.sessions[1].received][-1] == "end"
    assert isinstance(events[-1], StreamEnded)


async def test_end_before_the_drop_still_ends_the_stream_with_everything(
    clean_run: tuple[list[Any], list[Any]],
) -> None:
    uninterrupted, messages = clean_run
    stream = FlakySTTStream(drops=[len(messages) - 1])  # everything arrives but the end
    events = await run(stream, flush_at=PHRASE_ENDS[:-1])
    assert len(stream.sessions) == 2 and stream.sessions[1].received[-1] == ("end", None)
    assert final_words(events) == uninterrupted and isinstance(events[-1], StreamEnded)


async def test_end_called_during_the_reconnect_is_sent_after_the_replay(uninterrupted: list[Any]) -> None:
    stream = FlakySTTStream(drops=[len(AUDIO) // FRAME - 2])
    stream.open_delay_s = 0.02
    events = await run(stream, flush_at=PHRASE_ENDS[:-1], chunk=len(AUDIO))
    assert [kind for kind, _ in stream.sessions[1].received][-1] == "end"
    assert final_words(events) == uninterrupted


# --- budget and errors ------------------------------------------------------------------------------------------


async def test_past_the_budget_the_stream_fails_with_the_typed_error() -> None:
    stream = FlakySTTStream(Reliability(reconnects=2, backoff_s=0.001), drops=[3, 0, 0, 0])
    with pytest.raises(TransportError) as caught:
        await run(stream)
    assert len(stream.sessions) == 3  # the first session and two reconnects, each dropped before any progress
    assert any("gave up after 2 reconnect attempts" in note for note in caught.value.__notes__)
    assert stream.state is StreamState.CLOSED


async def test_failed_reopens_count_against_the_budget_and_use_retry_after() -> None:
    limited = RateLimitError("slow down", provider="flaky", retry_after=0.05)
    stream = FlakySTTStream(drops=[3], open_failures=[TransportError("refused"), limited])
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await run(stream)
    assert loop.time() - started >= 0.05
    (reconnect,) = [event for event in events if isinstance(event, Reconnected)]
    assert reconnect.attempt == 3 and "slow down" in (reconnect.reason or "")


async def test_the_count_resets_once_a_new_session_makes_progress(
    clean_run: tuple[list[Any], list[tuple[str, Any]]],
) -> None:
    uninterrupted, messages = clean_run
    flushes = [index for index, (kind, _) in enumerate(messages) if kind == "flush"]
    # one reconnect allowed in a row; each session drops two messages after confirming its first flush, and the
    # next one replays from that flush on
    drops = [flushes[0] + 2] + [after - before + 1 for before, after in itertools.pairwise(flushes)]
    stream = FlakySTTStream(Reliability(reconnects=1, backoff_s=0.001), drops=drops)
    events = await run(stream, flush_at=PHRASE_ENDS[:-1])
    assert len([event for event in events if isinstance(event, Reconnected)]) == len(flushes) == 3
    assert all(event.attempt == 1 for event in events if isinstance(event, Reconnected))
    assert final_words(events) == uninterrupted


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("key revoked", provider="flaky", code=1008),
        ProtocolError("malformed frame", provider="flaky"),
    ],
)
async def test_a_non_retryable_error_fails_at_once(error: Exception) -> None:
    stream = FlakySTTStream(drops=[4], drop_error=error)
    with pytest.raises(type(error)):
        await run(stream)
    assert len(stream.sessions) == 1


async def test_a_non_retryable_error_while_reopening_fails_the_stream() -> None:
    stream = FlakySTTStream(drops=[4], open_failures=[AuthenticationError("token expired", provider="flaky")])
    with pytest.raises(AuthenticationError, match="token expired"):
        await run(stream)
    assert len(stream.sessions) == 1


async def test_streams_that_cannot_reopen_or_have_no_budget_fail_at_once() -> None:
    class Plain(FlakySTTStream):
        reconnectable = False

    no_budget = Reliability(reconnects=0)
    for stream in (Plain(drops=[4]), FlakySTTStream(None, drops=[4]), FlakySTTStream(no_budget, drops=[4])):
        with pytest.raises(TransportError):
            await run(stream)
        assert len(stream.sessions) == 1


async def test_a_container_stream_cannot_resume_and_says_why() -> None:
    stream = FlakySTTStream(drops=[1], wire_format=AudioFormat("wav"))
    async with stream:
        await stream.send_audio(AUDIO[: 8 * FRAME])  # the bytes go as they are, in blocks of 4 kB
        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(stream.collect(), 5)
    assert any("cannot restart mid-way" in note and "pcm_16000" in note for note in caught.value.__notes__)


# --- the replay limit -------------------------------------------------------------------------------------------


async def test_audio_past_the_replay_limit_is_released_and_reported_lost() -> None:
    limited = Reliability(reconnects=3, backoff_s=0.001, replay_limit_s=0.5)
    stream = FlakySTTStream(limited, drops=[25])  # 2.08 s of words with no commit; the 26th frame meets the drop
    async with stream:
        await stream.send_audio(MONOLOGUE[: 26 * FRAME])
        events = await asyncio.wait_for(events_until(stream, Reconnected), 5)
        await stream.send_audio(MONOLOGUE[26 * FRAME :])
        await stream.end()
        await asyncio.wait_for(stream.collect(), 5)
    kept = 6 * FRAME  # the whole frames of the last 0.5 s
    assert events[-1] == Reconnected(1, kept / 2 / RATE, 20 * 0.08, events[-1].reason)  # type: ignore[union-attr]
    assert stream.session_start_s == pytest.approx(20 * 0.08)
    assert stream.sessions[1].audio == MONOLOGUE[20 * FRAME :]


async def test_committed_audio_is_released_so_the_log_stays_small() -> None:
    stream = FlakySTTStream()
    async with stream:
        for end in PHRASE_ENDS[:-1]:
            await stream.send_audio(AUDIO[stream.wire_bytes_sent : end])
            await asyncio.wait_for(stream.flush(), 5)
        assert stream._log.end - stream._log.committed == 0
        assert len(stream._log._audio) <= 1  # at most the frame that straddles the last commit
        await stream.end()
        await asyncio.wait_for(stream.collect(), 5)


async def test_closing_while_reconnecting_stops_cleanly() -> None:
    stream = FlakySTTStream(Reliability(reconnects=3, backoff_s=5.0), drops=[2])
    before = asyncio.all_tasks()
    async with stream:
        await stream.send_audio(AUDIO[: 4 * FRAME])
        await asyncio.sleep(0.02)
        assert stream._resuming is not None
    assert stream.state is StreamState.CLOSED
    assert {task for task in asyncio.all_tasks() if not task.done()} - before == set()
    with pytest.raises(StreamClosed):
        await stream.send_audio(AUDIO[:FRAME])


# --- the recognizer that hears content ---------------------------------------------------------------------------


@pytest.mark.parametrize("voice", ["sine", "square"])
async def test_vocabulary_mode_names_each_tone_wherever_the_audio_starts(voice: str) -> None:
    settings = ScriptedTTSSettings(voice=voice, sample_rate=RATE, ms_per_char=25, gap_ms=60)
    audio, _ = speak_phrases([WORDS], pause_s=0.2, settings=settings)
    stt = ScriptedSTT(vocabulary=WORDS, sample_rate=RATE)
    whole = await stt.transcribe(audio)
    assert whole.text == " ".join(WORDS)
    spoken = ToneSpeaker(settings)
    timings = [spoken.speak(word)[1] for word in WORDS]
    assert all(
        abs(word.start_s - timing.start_s) < 0.001 and abs(word.end_s - timing.end_s) < 0.001
        for word, timing in zip(whole.words, timings, strict=True)
    )
    offset = round(timings[4].start_s * RATE) - 40  # a session that starts in the gap before the fifth word
    rest = await stt.transcribe(PCMAudio(audio.data[2 * offset :], RATE))
    assert rest.text == " ".join(WORDS[4:])
    assert rest.words[0].start_s == pytest.approx(timings[4].start_s - offset / RATE, abs=0.001)


def test_a_vocabulary_needs_distinct_pitches_and_no_script() -> None:
    assert tone_frequency("alpha") != tone_frequency("bravo")
    clash = next(word for word in ("delta", "foxtrot", "golf", "kilo", "mike", "oscar") if word_clashes(word))
    with pytest.raises(ConfigError, match="same pitch"):
        ScriptedSTT(vocabulary=[*WORDS, clash])
    with pytest.raises(ConfigError, match="not both"):
        ScriptedSTT(script="one two", vocabulary=WORDS)


def word_clashes(word: str) -> bool:
    return tone_frequency(word) in {tone_frequency(known) for known in WORDS}


# --- ChaosProxy -------------------------------------------------------------------------------------------------


async def echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()
        except ConnectionError:
            pass

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def exchange(url: str, payload: bytes, *, timeout_s: float = 1.0) -> tuple[bytes, str]:
    """Send ``payload`` through the proxy at ``url`` and read the echo; what came back, and how it ended."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    received = bytearray()
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            while len(received) < len(payload):
                data = await reader.read(65536)
                if not data:
                    return bytes(received), "closed"
                received += data
        return bytes(received), "complete"
    except ConnectionError:
        return bytes(received), "reset"
    except TimeoutError:
        return bytes(received), "silent"
    finally:
        writer.transport.abort()


async def test_the_proxy_forwards_and_counts_connections() -> None:
    server = await echo_server()
    port = server.sockets[0].getsockname()[1]
    async with server, ChaosProxy(f"127.0.0.1:{port}") as proxy:
        assert proxy.url.startswith("http://127.0.0.1:") and proxy.ws_url.startswith("ws://127.0.0.1:")
        for _ in range(3):
            assert await exchange(proxy.url, b"x" * 100_000) == (b"x" * 100_000, "complete")
        assert proxy.connections == 3 and proxy.faults == []


async def test_a_cut_resets_the_connection_at_the_planned_byte() -> None:
    server = await echo_server()
    port = server.sockets[0].getsockname()[1]
    async with server, ChaosProxy(f"http://127.0.0.1:{port}", seed=1) as proxy:
        proxy.cut(after=30_000)
        received, ending = await exchange(proxy.url, bytes(50_000))
        assert ending in ("reset", "closed") and len(received) < 50_000
        assert proxy.faults == [Fault("cut", 0, 30_000)]
        assert await exchange(proxy.url, bytes(50_000)) == (bytes(50_000), "complete")  # only the next connection


async def test_random_cut_points_come_from_the_seed() -> None:
    server = await echo_server()
    port = server.sockets[0].getsockname()[1]

    async def points(seed: int) -> list[int]:
        async with ChaosProxy(f"127.0.0.1:{port}", seed=seed) as proxy:
            proxy.cut(after=(1_000, 40_000), connections=3)
            for _ in range(3):
                await exchange(proxy.url, bytes(50_000))
            return [fault.after_bytes for fault in proxy.faults]

    async with server:
        first = await points(5)
        assert first == await points(5) != await points(6)
        assert all(1_000 <= point <= 40_000 for point in first) and len(set(first)) == 3


async def test_a_stall_keeps_the_socket_open_and_forwards_nothing() -> None:
    server = await echo_server()
    port = server.sockets[0].getsockname()[1]
    async with server, ChaosProxy(f"127.0.0.1:{port}") as proxy:
        proxy.stall(after=1_000)
        received, ending = await exchange(proxy.url, bytes(20_000), timeout_s=0.2)
        assert ending == "silent" and len(received) <= 1_000
        assert proxy.faults == [Fault("stall", 0, 1_000)]
        assert proxy.open_connections == 1  # a stalled connection stays until it is cut

        proxy.stall()
        stalled = asyncio.create_task(exchange(proxy.url, bytes(5_000), timeout_s=2.0))
        await asyncio.sleep(0.05)
        assert proxy.open_connections == 2
        assert proxy.cut_open() == 2
        assert await stalled == (b"", "reset") or (await stalled)[1] == "closed"
        await asyncio.sleep(0.01)
        assert proxy.open_connections == 0


def test_the_proxy_needs_a_host_and_port_and_sane_faults() -> None:
    for target in ("http://127.0.0.1", "nowhere", "http://:80"):
        with pytest.raises(ConfigError, match="host and a port"):
            ChaosProxy(target)
    proxy = ChaosProxy("127.0.0.1:9")
    with pytest.raises(ConfigError):
        proxy.cut(after=(10, 5))
    with pytest.raises(ConfigError):
        proxy.stall(connections=0)
    with pytest.raises(RuntimeError, match="not running"):
        assert proxy.url
