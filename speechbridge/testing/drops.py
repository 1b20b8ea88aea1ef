"""Drop tests: check that an STT provider, or an app built on one, survives dropped connections without losing words.

Serve a front that speaks your provider's wire protocol over ``ScriptedSTT(vocabulary=...)`` (which names each tone of
the audio by its pitch, so a session that starts in the middle of the stream hears what is there), put a
:class:`~.chaos.ChaosProxy` in front of it, and compare seeded runs with random cuts to the run without one::

    speech = DropSpeech.of()
    app = make_app(speech.recognizer(), None, api_keys=[KEY])  # e.g. the Deepgram front
    async with DropTest(app, lambda url: DeepgramSTT(api_key=KEY, base_url=url), speech, seed=7) as drops:
        clean = await drops.run()
        runs = await drops.runs(range(100), after=(1000, clean.bytes), cuts=(1, 2))
    assert failures(runs, clean) == []

A replay that skipped, repeated or misplaced audio changes the final words or their times; with replay off
(``Reliability(replay_limit_s=0)``) the same runs lose words. :func:`check_random_drops` runs both steps above,
:func:`check_replay_off_loses_words` is that control, and :func:`check_stalled_flushes` checks flushes and the end
pending on a socket that stopped answering.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self

import attrs

from ..audio import AudioFormat, PCMAudio
from ..errors import SpeechBridgeError
from ..events import Flushed, Ready, Reconnected, StreamEnded, STTEvent, Transcript, TurnEnded
from ..stt import STTProvider, STTStream
from .chaos import ChaosProxy, Fault
from .scripted import ScriptedSTT, ScriptedSTTSettings, ScriptedSTTStream, ScriptedTTSSettings, speak_phrases
from .servers import LiveServer

__all__ = [
    "DROP_PHRASES",
    "DropRun",
    "DropSpeech",
    "DropTest",
    "FailingSTT",
    "NormalCloseOnce",
    "check_random_drops",
    "check_replay_off_loses_words",
    "check_stalled_flushes",
    "failures",
    "final_words",
    "send_and_collect",
]

DROP_PHRASES: Final = (
    ("alpha", "bravo", "charlie"),
    ("echo", "hotel"),
    ("india", "juliet", "lima", "papa"),
    ("tango",),
)
SPEAKER: Final = ScriptedTTSSettings(sample_rate=8000, ms_per_char=25, gap_ms=60)
CHUNK_BYTES: Final = 2000
FLUSH_TIMEOUT_S: Final = 5.0
END_TIMEOUT_S: Final = 10.0
PENDING_S: Final = 0.05  # long enough for an answer on a live socket, so a flush not done by then is pending

Word = tuple[str, float, float]


@attrs.frozen
class DropSpeech:
    """``phrases`` spoken as tones, each followed by ``pause_s`` of silence, ending at ``pause_ends_s``."""

    phrases: tuple[tuple[str, ...], ...]
    audio: PCMAudio
    pause_ends_s: tuple[float, ...]
    pause_s: float

    @classmethod
    def of(
        cls,
        phrases: Iterable[Sequence[str]] = DROP_PHRASES,
        *,
        pause_s: float = 0.6,
        settings: ScriptedTTSSettings = SPEAKER,
    ) -> DropSpeech:
        words = tuple(tuple(phrase) for phrase in phrases)
        audio, ends = speak_phrases(words, pause_s=pause_s, settings=settings)
        return cls(words, audio, ends, pause_s)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(word for phrase in self.phrases for word in phrase)

    @property
    def format(self) -> AudioFormat:
        return AudioFormat.pcm16(self.audio.sample_rate)

    @property
    def flush_at(self) -> tuple[int, ...]:
        """The byte offsets where each pause but the last ends: a flush there makes a phrase final."""
        return tuple(self._offset(end) for end in self.pause_ends_s[:-1])

    @property
    def speech_end(self) -> int:
        """The byte offset where the last word ends (no pause after it makes it final)."""
        return self._offset(self.pause_ends_s[-1] - self.pause_s)

    def recognizer(self, *, fails_with: SpeechBridgeError | None = None) -> ScriptedSTT:
        """A backend for the front that hears these words by their pitch; with ``fails_with``, a :class:`FailingSTT`
        whose first stream fails with that error after 8 kB of audio."""
        options: dict[str, Any] = {"vocabulary": sorted(set(self.words)), "sample_rate": self.audio.sample_rate}
        return ScriptedSTT(**options) if fails_with is None else FailingSTT(fails_with, **options)

    def _offset(self, time_s: float) -> int:
        return round(time_s * self.audio.sample_rate) * 2


async def send_and_collect(
    stream: STTStream, audio: bytes, *, flush_at: Iterable[int] = (), chunk_bytes: int = CHUNK_BYTES
) -> list[STTEvent]:
    """Send ``audio`` faster than real time in chunks, flushing at the byte offsets ``flush_at``, while reading; then
    end the stream. Every event."""
    async with stream:
        reader = asyncio.create_task(stream.collect())
        try:
            start = 0
            for stop in [*flush_at, len(audio)]:
                for offset in range(start, stop, chunk_bytes):
                    await stream.send_audio(audio[offset : min(offset + chunk_bytes, stop)])
                if stop < len(audio):
                    await asyncio.wait_for(stream.flush(), FLUSH_TIMEOUT_S)
                start = stop
            await stream.end()
            return await asyncio.wait_for(reader, END_TIMEOUT_S)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def final_words(events: Iterable[STTEvent]) -> list[Word]:
    """Each word of the final transcripts, with its start and end time."""
    return [
        (word.text, word.start_s, word.end_s)
        for event in events
        if isinstance(event, Transcript) and event.is_final
        for word in event.words
    ]


@attrs.frozen
class DropRun:
    """One run: its events, the faults the proxy made during it, the bytes it moved both ways and how long it took."""

    seed: int | None
    events: tuple[STTEvent, ...] = attrs.field(repr=False)
    faults: tuple[Fault, ...]
    bytes: int
    elapsed_s: float

    @property
    def words(self) -> list[Word]:
        return final_words(self.events)

    @property
    def texts(self) -> list[str]:
        return [text for text, _, _ in self.words]

    @property
    def reconnects(self) -> list[Reconnected]:
        return [event for event in self.events if isinstance(event, Reconnected)]

    @property
    def turns(self) -> list[str]:
        return [event.text for event in self.events if isinstance(event, TurnEnded)]

    @property
    def lost_s(self) -> float:
        return sum(event.lost_s for event in self.reconnects)

    def problems(self, baseline: DropRun, *, time_tolerance_s: float = 0.0) -> list[str]:
        """What is wrong with this run of cuts next to ``baseline``, the run without: no cut, not one Reconnected per
        cut, not one Ready and a StreamEnded last, or other final words or times."""
        found = []
        if not self.faults:
            found.append("the cut did not happen")
        if len(self.reconnects) != len(self.faults):
            found.append(f"{len(self.reconnects)} Reconnected events for {len(self.faults)} cuts")
        if [type(event) for event in self.events].count(Ready) != 1 or not isinstance(self.events[-1], StreamEnded):
            found.append("not one Ready and a StreamEnded at the end")
        times = (
            [time for word in self.words for time in word[1:]],
            [time for word in baseline.words for time in word[1:]],
        )
        if self.texts != baseline.texts or any(abs(a - b) > time_tolerance_s for a, b in zip(*times, strict=True)):
            found.append(f"final words {self.words}")
        return found


def failures(runs: Iterable[DropRun], baseline: DropRun, *, time_tolerance_s: float = 0.0) -> list[str]:
    """The :meth:`DropRun.problems` of every run, each with its seed and faults; empty when every run survived."""
    return [
        f"seed {run.seed}, {list(run.faults)}: {problem}"
        for run in runs
        for problem in run.problems(baseline, time_tolerance_s=time_tolerance_s)
    ]


async def check_random_drops(
    drops: DropTest,
    seeds: Iterable[int],
    *,
    window: Callable[[DropRun], tuple[int, int]],
    cuts: int | tuple[int, int] = (1, 2),
    time_tolerance_s: float = 0.0,
    check: Callable[[DropRun], bool] | None = None,
) -> list[DropRun]:
    """Assert that the run without cuts hears every word, and that a run for each seed, with ``cuts`` cuts at random
    points of ``window(clean run)`` (bytes), gives its final words and times (within ``time_tolerance_s``) with a
    Reconnected per cut; ``check``, if given, must hold for every run, the clean one too. The runs."""
    clean = await drops.run()
    assert clean.texts == list(drops.speech.words), f"the run without cuts heard {clean.texts}"
    assert check is None or check(clean), "the run without cuts fails the check"
    runs = await drops.runs(seeds, after=window(clean), cuts=cuts)
    problems = failures(runs, clean, time_tolerance_s=time_tolerance_s)
    assert problems == [], "\n".join(problems)
    unchecked = [] if check is None else [run.seed for run in runs if not check(run)]
    assert unchecked == [], f"the runs of seeds {unchecked} fail the check"
    reconnects = sum(len(run.reconnects) for run in runs)
    assert reconnects >= len(runs), f"{reconnects} drops in {len(runs)} runs"
    print(f"\n{len(runs)} runs, {reconnects} drops survived, {sum(run.elapsed_s for run in runs):.2f} s")
    return runs


async def check_replay_off_loses_words(drops: DropTest, seeds: Iterable[int] = range(20), *, at_least: int = 15) -> int:
    """The control for :func:`check_random_drops`, for ``drops`` whose provider has replay off: assert that at least
    ``at_least`` runs, one per seed with one cut in the second quarter of the bytes, lose audio and words (so the
    check can fail). How many did."""
    clean = await drops.run()
    runs = await drops.runs(seeds, after=(clean.bytes // 4, clean.bytes // 2), cuts=1)
    lossy = sum(run.lost_s > 0 and run.texts != list(drops.speech.words) for run in runs)
    print(f"\n{lossy} of {len(runs)} runs without replay lost words")
    assert lossy >= at_least, f"only {lossy} of {len(runs)} runs without replay lost words"
    return lossy


async def check_stalled_flushes(drops: DropTest, *, pending_flushes: int = 2) -> list[STTEvent]:
    """For ``drops`` whose provider has a short ``dead_peer_timeout_s``: flush once, stall the socket, send
    ``pending_flushes`` more phrases each with a flush, and assert that they stay pending until the pings find the
    peer dead and the new socket answers them in order; then stall that one with the end pending too, and assert that
    the third socket ends the stream with every word and two Reconnected naming the dead peer. The events."""
    audio, flush_at, proxy = drops.speech.audio.data, drops.speech.flush_at, drops.proxy
    if not 0 < pending_flushes < len(flush_at):
        raise ValueError(f"pending_flushes must be 1 to {len(flush_at) - 1} for this speech, not {pending_flushes}")
    async with drops.stt.stream(format=drops.speech.format) as stream:
        await stream.send_audio(audio[: flush_at[0]])
        assert await asyncio.wait_for(stream.flush(), FLUSH_TIMEOUT_S) == Flushed(1)
        assert proxy.stall_open() == 1, "no open connection to stall"
        pending: list[asyncio.Task[Flushed]] = []
        for start, stop in itertools.pairwise(flush_at[: pending_flushes + 1]):
            if pending:
                await asyncio.sleep(0.01)
            await stream.send_audio(audio[start:stop])
            pending.append(asyncio.create_task(stream.flush()))
        await asyncio.sleep(PENDING_S)
        assert not any(flush.done() for flush in pending), "a flush was answered on the stalled socket"
        answers = await asyncio.wait_for(asyncio.gather(*pending), FLUSH_TIMEOUT_S)
        assert answers == [Flushed(count) for count in range(2, pending_flushes + 2)], answers
        await stream.send_audio(audio[flush_at[pending_flushes] :])
        proxy.stall_open()
        await stream.end()
        events = await asyncio.wait_for(stream.collect(), END_TIMEOUT_S)
    heard = [text for text, _, _ in final_words(events)]
    assert heard == list(drops.speech.words), f"heard {heard}"
    dropped = [event for event in events if isinstance(event, Reconnected)]
    assert len(dropped) == 2 and all("stopped answering" in (event.reason or "") for event in dropped), dropped
    assert isinstance(events[-1], StreamEnded), f"the last event is {events[-1]!r}"
    assert proxy.connections == 3, f"{proxy.connections} connections, not 3"
    return events


class DropTest:
    """``app`` served on 127.0.0.1 behind a :class:`ChaosProxy` (random points from ``seed``), and the provider
    ``connect(proxy.url)`` that recognises ``speech`` through it, for the duration of an ``async with`` block.

    asyncio's warnings about writes to sockets the proxy cut are silenced meanwhile.
    """

    def __init__(
        self,
        app: Any,
        connect: Callable[[str], STTProvider[Any]],
        speech: DropSpeech,
        *,
        seed: int | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.speech = speech
        self.chunk_bytes = chunk_bytes
        self.server = LiveServer(app)
        self._connect = connect
        self._seed = seed
        self._proxy: ChaosProxy | None = None
        self._stt: STTProvider[Any] | None = None
        self._asyncio_level = logging.NOTSET

    @property
    def proxy(self) -> ChaosProxy:
        """The proxy; after the block, still there for its counts and faults."""
        if self._proxy is None:
            raise RuntimeError("the drop test is not running: use it inside 'async with DropTest(...)'")
        return self._proxy

    @property
    def stt(self) -> STTProvider[Any]:
        if self._stt is None:
            raise RuntimeError("the drop test is not running: use it inside 'async with DropTest(...)'")
        return self._stt

    async def run(
        self,
        *,
        cuts: int = 0,
        after: int | tuple[int, int] = 0,
        seed: int | None = None,
        audio: bytes | None = None,
        flush_at: Iterable[int] | None = None,
    ) -> DropRun:
        """Recognise the speech (or ``audio``), flushing at each pause (or ``flush_at``), with the next ``cuts``
        connections cut once ``after`` bytes passed (a ``(low, high)`` pair: a random point in it)."""
        self.proxy.clear()
        faults, forwarded, started = len(self.proxy.faults), self.proxy.bytes_forwarded, time.perf_counter()
        if cuts:
            self.proxy.cut(after=after, connections=cuts)
        events = await send_and_collect(
            self.stt.stream(format=self.speech.format),
            self.speech.audio.data if audio is None else audio,
            flush_at=self.speech.flush_at if flush_at is None else flush_at,
            chunk_bytes=self.chunk_bytes,
        )
        return DropRun(
            seed,
            tuple(events),
            tuple(self.proxy.faults[faults:]),
            self.proxy.bytes_forwarded - forwarded,
            time.perf_counter() - started,
        )

    async def runs(
        self, seeds: Iterable[int], *, after: int | tuple[int, int], cuts: int | tuple[int, int] = (1, 2)
    ) -> list[DropRun]:
        """A :meth:`run` for each seed, with ``cuts`` cuts (a ``(low, high)`` pair: a count drawn from the seed)."""
        return [
            await self.run(
                cuts=random.Random(seed).randint(*cuts) if isinstance(cuts, tuple) else cuts, after=after, seed=seed
            )
            for seed in seeds
        ]

    async def __aenter__(self) -> Self:
        logger = logging.getLogger("asyncio")
        self._asyncio_level = logger.level
        logger.setLevel(logging.ERROR)
        await self.server.start()
        try:
            self._proxy = ChaosProxy(self.server.url, seed=self._seed)
            await self._proxy.start()
            self._stt = self._connect(self._proxy.url)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._stt is not None:
                await self._stt.aclose()
            if self._proxy is not None:
                await self._proxy.stop()
            await self.server.stop()
        finally:
            self._stt = None  # the proxy stays, for its counts
            logging.getLogger("asyncio").setLevel(self._asyncio_level)


class FailingSTT(ScriptedSTT):
    """Hears like :class:`ScriptedSTT`; its first stream fails with ``error`` once ``after_bytes`` of audio came (a
    backend fault in the middle of a session)."""

    def __init__(self, error: SpeechBridgeError, *, after_bytes: int = 8000, **options: Any) -> None:
        super().__init__(**options)
        self.error: SpeechBridgeError | None = error
        self.after_bytes = after_bytes

    def _stream(self, format: AudioFormat, settings: ScriptedSTTSettings) -> STTStream:
        error, self.error = self.error, None
        return _FailingStream(self.name, format, settings, error, self.after_bytes)


class _FailingStream(ScriptedSTTStream):
    def __init__(
        self,
        provider: str,
        format: AudioFormat,
        settings: ScriptedSTTSettings,
        error: SpeechBridgeError | None,
        after_bytes: int,
    ) -> None:
        super().__init__(provider, format, settings)
        self.error, self.after_bytes, self.received = error, after_bytes, 0

    async def _send_frame(self, frame: bytes) -> None:
        self.received += len(frame)
        if self.error is not None and self.received > self.after_bytes:
            raise self.error
        await super()._send_frame(frame)


class NormalCloseOnce:
    """An ASGI wrapper that closes the first WebSocket normally (code 1000) when a text message for which ``when`` is
    true arrives, before the app sees it: a server ending a session early without an error. ``closed`` counts it."""

    def __init__(self, app: Any, when: Callable[[str], bool]) -> None:
        self.app = app
        self.when = when
        self.closed = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or self.closed:
            await self.app(scope, receive, send)
            return
        closed = False

        async def receiving() -> Any:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and self.when(message.get("text") or ""):
                await send({"type": "websocket.close", "code": 1000})
                closed, self.closed = True, self.closed + 1
                return {"type": "websocket.disconnect", "code": 1000}
            return message

        async def sending(message: Any) -> None:
            if not closed:
                await send(message)

        await self.app(scope, receiving, sending)
