"""The speech-to-text interface: :class:`STTProvider` and its live :class:`STTStream`."""

from __future__ import annotations

import abc
import asyncio
import logging
import os
from collections import deque
from typing import Any, ClassVar, Final, Literal, TypeVar

import attrs

from .audio import AudioFormat, Framer, PCMAudio, StreamConverter, identify, read_file
from .errors import AudioFormatError, RateLimitError, SpeechBridgeError, UnsupportedFeature
from .events import (
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
from .provider import Provider
from .reliability import Reliability, is_retryable
from .streams import EventStream, StreamState

__all__ = ["AudioInput", "STTCapabilities", "STTProvider", "STTStream"]

S = TypeVar("S")
log = logging.getLogger("speechbridge.stt")
_RESUMABLE_STATES: Final = (StreamState.OPEN, StreamState.ENDING)
_Kind = Literal["audio", "flush", "end"]
AudioInput = bytes | PCMAudio | str | os.PathLike[str]


@attrs.frozen
class STTCapabilities:
    """What an STT provider can do; adapters and the CLI read it instead of trying and failing."""

    batch: bool = True
    streaming: bool = True
    interim_results: bool = False
    word_timestamps: bool = False
    flush: bool = False  # flush() forces out withheld text and is confirmed by Flushed
    vad: bool = False  # the stream emits VADUpdate / SpeechStarted
    turn_detection: bool = False  # the stream emits TurnEnded
    languages: tuple[str, ...] = ()
    sample_rates: tuple[int, ...] = ()  # rates the vendor takes natively; others are resampled


class _ReplayLog:
    """The wire audio, flushes and end of a stream not yet covered by committed text, in the order they go out.

    Sans-IO: positions count wire sample frames. Each session sends from its own cursor; :meth:`rewind` moves the
    cursor back to the committed position for a new session. Audio wholly before ``committed`` is released, and so is
    the oldest audio already taken to be sent once the log holds more than ``limit``; audio not yet taken is never
    released. With ``keep=False`` audio is released as soon as it is taken.
    """

    def __init__(self, width: int, *, keep: bool, limit: int) -> None:
        self.width = width
        self.keep = keep
        self.limit = limit
        self.end = 0  # the position after all audio queued so far
        self.committed = 0
        self.end_requested = False
        self._audio: deque[tuple[int, int, int, bytes]] = deque()  # (sequence, start, stop, frame)
        self._next_seq = 0
        self._cursor = 0  # sequence of the next frame the current session has not been sent
        self._flushes: dict[int, int] = {}  # unconfirmed flush id -> its position
        self._flush_cursor = 0  # the last flush id sent in the current session
        self._end_sent = False

    def append(self, frame: bytes) -> None:
        stop = self.end + len(frame) // self.width
        self._audio.append((self._next_seq, self.end, stop, frame))
        self._next_seq += 1
        self.end = stop
        if self.keep and stop - self._audio[0][1] > self.limit:
            self._trim()

    def add_flush(self, flush_id: int) -> None:
        self._flushes[flush_id] = self.end

    def take(self) -> tuple[_Kind, Any] | None:
        """The next item the current session is to send, counted as sent (a session that fails while sending it is
        rewound): ``("audio", frame)``, ``("flush", id)``, ``("end", None)``, or None when everything went out."""
        audio = self._audio[self._cursor - self._audio[0][0]] if self._cursor < self._next_seq else None
        if self._flushes:
            flush_id = self._next_flush(audio[1] if audio is not None else self.end)
            if flush_id is not None:
                self._flush_cursor = flush_id
                return "flush", flush_id
        if audio is not None:
            self._cursor += 1
            if not self.keep:
                self._audio.popleft()
            elif self.end - self._audio[0][1] > self.limit:
                self._trim()
            return "audio", audio[3]
        if self.end_requested and not self._end_sent:
            self._end_sent = True
            return "end", None
        return None

    def _next_flush(self, position: int) -> int | None:
        """The first flush the current session has not sent, if it belongs before ``position``."""
        for flush_id, at in self._flushes.items():
            if flush_id > self._flush_cursor:
                return flush_id if at <= position else None
        return None

    def _trim(self) -> None:
        """Release the oldest audio already taken while the log holds more than ``limit``."""
        while self._audio and self.end - self._audio[0][1] > self.limit and self._audio[0][0] < self._cursor:
            self._audio.popleft()

    def commit(self, position: int) -> bool:
        """Text is final up to ``position``; whether that is further than before."""
        position = min(position, self.end)
        if position <= self.committed:
            return False
        self.committed = position
        while self._audio and self._audio[0][2] <= position and self._audio[0][0] < self._cursor:
            self._audio.popleft()
        return True

    def confirm_flush(self, flush_id: int) -> bool:
        """A flush was confirmed: what was sent before it is committed. Whether it was one of this log's."""
        at = self._flushes.pop(flush_id, None)
        if at is None:
            return False
        self.commit(at)
        return True

    def rewind(self) -> tuple[int, int, int]:
        """Start a new session from the committed position: (where it starts, how much is replayed, how much of
        the uncommitted audio was already released and is lost)."""
        while self._audio and self._audio[0][2] <= self.committed:
            self._audio.popleft()
        first = self._audio[0][1] if self._audio else self.end
        start = max(first, self.committed)
        if self._audio and first < start:  # the first frame straddles the committed position: send only its rest
            seq, _, stop, frame = self._audio[0]
            self._audio[0] = (seq, start, stop, frame[(start - first) * self.width :])
        self._cursor = self._audio[0][0] if self._audio else self._next_seq
        self._flush_cursor = 0
        self._end_sent = False
        return start, self.end - start, max(0, first - self.committed)


def _shifted(event: STTEvent, offset_s: float) -> STTEvent:
    """``event`` with its times moved ``offset_s`` later."""
    if isinstance(event, Transcript):
        return attrs.evolve(
            event,
            start_s=None if event.start_s is None else event.start_s + offset_s,
            end_s=None if event.end_s is None else event.end_s + offset_s,
            words=tuple(
                attrs.evolve(word, start_s=word.start_s + offset_s, end_s=word.end_s + offset_s) for word in event.words
            ),
        )
    if isinstance(event, (VADUpdate, SpeechStarted)):
        return attrs.evolve(event, time_s=event.time_s + offset_s)
    if isinstance(event, TurnEnded) and event.time_s is not None:
        return attrs.evolve(event, time_s=event.time_s + offset_s)
    return event


class STTStream(EventStream[STTEvent]):
    """A live recognition session.

    Send audio in the format given to ``provider.stream(format=...)``, in chunks of any size; the stream converts it
    to what the vendor takes and frames it (80 ms by default). Iterate to receive events up to ``StreamEnded``.

    **Reconnects.** When the connection drops mid-stream with a retryable error (see
    :func:`~speechbridge.reliability.is_retryable`) and the backend is ``reconnectable``, the stream opens a new
    session after ``reliability.delay(attempt)`` and sends again the audio that no final transcript or confirmed flush
    covers yet, then the flushes still waiting and the end if it was asked for, then the audio sent meanwhile; it
    emits :class:`~speechbridge.events.Reconnected` first. Times of the new session's events are shifted to the
    stream's own timeline, and ``Ready`` is emitted only once. Past ``reliability.reconnects`` attempts in a row
    without progress (a new final transcript, a confirmed flush or the end), the stream fails with the last error.
    Raw wire audio only: a stream sending a container (WAV, Ogg) fails on a drop, as it cannot restart mid-way.
    """

    reconnectable: ClassVar[bool] = False
    """Set by a backend whose ``_open()`` may be called again after ``_close()`` to start a fresh session, with its
    per-session state reset (the base cancels the old session's ``_spawn``-ed tasks first)."""

    def __init__(
        self,
        provider: str,
        *,
        format: AudioFormat,
        wire_format: AudioFormat,
        frame_ms: float = 80.0,
        reliability: Reliability | None = None,
    ) -> None:
        super().__init__(provider)
        self.format = format
        self.wire_format = wire_format
        self.reliability = reliability
        self._converter = StreamConverter(format, wire_format)
        self._framer = Framer.for_format(wire_format, frame_ms) if wire_format.is_raw else Framer(4096)
        self.wire_bytes_sent = 0  # the caller's audio as sent on the wire, replays not counted
        self.session_start_s = 0.0  # where the current session's audio starts in the stream's timeline
        self._rate = wire_format.sample_rate if wire_format.is_raw else None
        limit = None  # in wire samples; None: nothing is kept for a replay
        if reliability is not None and self._reconnects_allowed() and self._rate is not None:
            limit = round(reliability.replay_limit_s * self._rate)
        width = wire_format.frame_width if wire_format.is_raw else 1
        self._log = _ReplayLog(width, keep=limit is not None, limit=limit or 0)
        self._pumping: int | None = None  # the session whose send loop is running
        self._pumped: asyncio.Future[None] | None = None  # resolved when that loop ends, for callers waiting on it
        self._live = True  # False from a drop until the new session has caught up
        self._attempts = 0  # reconnect attempts since the last progress
        self._drop: SpeechBridgeError | None = None
        self._resuming: asyncio.Task[Any] | None = None
        self._ready_seen = False

    async def send_audio(self, data: bytes) -> None:
        """Queue audio for recognition."""
        if self.state is not StreamState.OPEN or self._error is not None:
            self._ensure_open()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioFormatError(f"send_audio takes bytes of {self.format} audio, not {type(data).__name__}")
        for frame in self._framer.push(self._converter.process(data)):
            self._queue_frame(frame)
        await self._pump()

    async def flush(self) -> Flushed:
        """Force out text the provider is holding back; returns once the provider confirms."""
        self._ensure_open()
        rest = self._framer.rest()
        stray = self._stray_bytes(rest)
        if stray:
            rest, partial_sample = rest[:-stray], rest[-stray:]
            for frame in self._framer.push(partial_sample):
                self._queue_frame(frame)
        if rest:
            self._queue_frame(rest)
        flush_id, waiter = self._new_flush()
        self._log.add_flush(flush_id)
        await self._pump()
        return await waiter

    async def end(self) -> None:
        """No more audio: the provider finishes, emits its last events and ``StreamEnded``.

        Audio that stops inside a sample fails the stream with :class:`AudioFormatError`.
        """
        self._ensure_open()
        self.state = StreamState.ENDING
        try:
            tail = self._converter.flush()
        except AudioFormatError as exc:
            self._fail(exc)
            raise
        for frame in self._framer.push(tail):
            self._queue_frame(frame)
        rest = self._framer.rest()
        stray = self._stray_bytes(rest)
        if stray:
            error = AudioFormatError(
                f"{self.format} stream ended inside a sample: {stray} stray bytes "
                f"(audio must come in whole {self.format.sample_width * self.format.channels}-byte sample frames)",
                provider=self.provider,
            )
            self._fail(error)
            raise error
        if rest:
            self._queue_frame(rest)
        self._log.end_requested = True
        await self._pump()

    def _stray_bytes(self, data: bytes) -> int:
        """How many bytes at the end of ``data`` are an incomplete wire sample."""
        if not self.wire_format.is_raw:
            return 0
        return len(data) % (self.wire_format.sample_width * self.wire_format.channels)

    def _queue_frame(self, frame: bytes) -> None:
        self.wire_bytes_sent += len(frame)
        self._log.append(frame)

    async def _pump(self, *, resuming: bool = False) -> None:
        """Send what is queued, in order, on the live session (or, ``resuming``, on the new one before it is live).

        One loop sends at a time. A caller that finds it running (held up by backpressure) waits for it to end, then
        sends what is left, if anything (the loop may have been cancelled). While the stream reconnects, callers only
        queue and the new session sends their items.
        """
        while self._pumping == self._session:
            if self._pumped is None:
                self._pumped = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._pumped)
        session = self._session
        if not (self._live or resuming):
            return
        self._pumping = session
        log = self._log
        try:
            while session == self._session and (item := log.take()) is not None:
                kind, value = item
                if kind == "audio":
                    await self._send_frame(value)
                elif kind == "flush":
                    await self._send_flush(value)
                else:
                    await self._send_end()
        except SpeechBridgeError as error:
            if session != self._session:
                return  # the session was given up while this was sent: the next one sends it again
            self._session_failed(error, session)
            if self._session == session:  # no reconnect took over: the caller hears of it
                raise
        finally:
            if self._pumping == session:
                self._pumping = None
                if self._pumped is not None:
                    self._pumped.set_result(None)
                    self._pumped = None

    # --- reconnecting ---------------------------------------------------------------------------------------------

    def _reconnects_allowed(self) -> bool:
        return self.reconnectable and self.reliability is not None and self.reliability.reconnects > 0

    def _session_failed(self, error: BaseException, session: int) -> None:
        if session != self._session:
            return  # a session already given up
        if not (is_retryable(error) and self._reconnects_allowed() and self.state in _RESUMABLE_STATES):
            self._fail(error)
            return
        assert isinstance(error, SpeechBridgeError)
        if self._rate is None:
            error.add_note(
                f"a live stream of {self.wire_format} audio cannot restart mid-way after a drop; "
                "send raw audio (such as pcm_16000) to have drops survived"
            )
            self._fail(error)
            return
        self._session += 1
        self._live = False
        self._drop = error
        if self._resuming is None:
            self._resuming = self._spawn(self._resume(), session=False)

    async def _resume(self) -> None:
        assert self.reliability is not None and self._rate is not None
        try:
            while not self._live and self._error is None and self.state in _RESUMABLE_STATES:
                await self._end_session()
                error = self._drop
                assert error is not None
                self._attempts += 1
                if self._attempts > self.reliability.reconnects:
                    error.add_note(f"gave up after {self.reliability.reconnects} reconnect attempts in a row")
                    self._fail(error)
                    return
                retry_after = error.retry_after if isinstance(error, RateLimitError) else None
                await asyncio.sleep(self.reliability.delay(self._attempts, retry_after=retry_after))
                await self._reopen(self._rate)
        finally:
            self._resuming = None

    async def _end_session(self) -> None:
        """Stop the failed session's tasks and release its connection."""
        current = asyncio.current_task()
        tasks = [task for task, session in self._tasks.items() if session is not None and task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._close()
        except Exception as error:  # the connection is gone already; closing it is a courtesy
            log.debug("closing the dropped session of %s failed: %r", self.provider, error)

    async def _reopen(self, rate: int) -> None:
        """Open a new session and send it everything not committed; the stream is live again when it caught up.

        Until then no caller's send loop runs (they only queue), and a loop of the old session stops at its next item.
        """
        session = self._session
        start, replayed, lost = self._log.rewind()
        self.session_start_s = start / rate
        try:
            await self._open()
            if session == self._session:
                reason = str(self._drop) if self._drop is not None else None
                self._emit(Reconnected(self._attempts, replayed / rate, lost / rate, reason))
                await self._pump(resuming=True)
        except SpeechBridgeError as error:
            if session == self._session:
                self._session += 1
                if not is_retryable(error):
                    self._fail(error)
                self._drop = error
            return
        if session == self._session:
            self._live = True
            log.info(
                "%s stream reconnected (attempt %d, %.2f s replayed, %.2f s lost) after: %s",
                self.provider,
                self._attempts,
                replayed / rate,
                lost / rate,
                self._drop,
            )

    def _emit(self, event: STTEvent) -> None:
        if isinstance(event, Ready):
            if self._ready_seen:
                return
            self._ready_seen = True
        elif self.session_start_s:
            event = _shifted(event, self.session_start_s)
        super()._emit(event)
        if not isinstance(event, (Transcript, Flushed, StreamEnded)):
            return
        progress = isinstance(event, StreamEnded)
        if isinstance(event, Transcript) and event.is_final and event.end_s is not None and self._rate:
            progress = self._log.commit(round(event.end_s * self._rate))
        elif isinstance(event, Flushed):
            progress = self._log.confirm_flush(event.flush_id)
        if progress:
            self._attempts = 0

    @abc.abstractmethod
    async def _send_frame(self, frame: bytes) -> None:
        """Send one frame of ``wire_format`` audio."""

    @abc.abstractmethod
    async def _send_end(self) -> None:
        """Tell the provider the audio is over."""


class STTProvider(Provider[S], abc.ABC):
    """A speech-to-text backend. Subclasses set ``name``, ``Settings``, ``capabilities`` and implement
    ``_transcribe`` and/or ``_stream``."""

    capabilities: ClassVar[STTCapabilities]

    async def transcribe(
        self, audio: AudioInput, *, format: AudioFormat | str | None = None, **options: Any
    ) -> Transcript:
        """Recognise a whole recording (a path, bytes or :class:`PCMAudio`) and return one final transcript.

        Containers (WAV, FLAC, Ogg/Opus, MP3) are recognised; raw bytes need ``format``.
        """
        if not self.capabilities.batch:
            raise UnsupportedFeature("batch transcription is not supported", provider=self.name)
        settings = self._settings_with(options)
        if isinstance(audio, PCMAudio):
            data, fmt = audio.data, audio.format
        elif isinstance(audio, (bytes, bytearray, memoryview)):
            data = bytes(audio)
            fmt = identify(data, format)
        else:
            pcm = read_file(audio, format)
            data, fmt = pcm.data, pcm.format
        return await self._transcribe(data, fmt, settings)

    def stream(self, *, format: AudioFormat | str, **options: Any) -> STTStream:
        """A live session for audio in ``format``; use it as ``async with provider.stream(...) as stream``."""
        if not self.capabilities.streaming:
            raise UnsupportedFeature("streaming recognition is not supported", provider=self.name)
        return self._stream(AudioFormat.parse(format), self._settings_with(options))

    @abc.abstractmethod
    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: S) -> Transcript:
        """Recognise ``audio`` (in ``format``, never empty)."""

    @abc.abstractmethod
    def _stream(self, format: AudioFormat, settings: S) -> STTStream:
        """Create an unopened stream for audio in ``format``."""
