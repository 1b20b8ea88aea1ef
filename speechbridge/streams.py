"""What STT and TTS streams share: lifecycle, event delivery, flush bookkeeping and background tasks."""

from __future__ import annotations

import abc
import asyncio
import collections
import enum
from collections.abc import AsyncIterator, Coroutine
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

from .errors import SpeechBridgeError, StreamClosed
from .events import Flushed, StreamEnded

__all__ = ["EventStream", "StreamState"]

E = TypeVar("E")


class StreamState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    ENDING = "ending"  # end() was called; events are still arriving
    ENDED = "ended"  # StreamEnded was emitted
    FAILED = "failed"
    CLOSED = "closed"


_OVER: Final = (StreamState.CLOSED, StreamState.FAILED, StreamState.ENDED)  # no more events (enums hash slowly)


class EventStream(abc.ABC, Generic[E]):
    """An async context manager that yields events until :class:`StreamEnded` and raises typed errors.

    Subclasses implement ``_open``/``_close`` and the ``_send_*`` methods of their kind, and report what the
    provider produces with ``_emit`` and ``_fail``.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.state = StreamState.NEW
        self._events: collections.deque[E | StreamEnded | Flushed | BaseException] = collections.deque()
        self._arrival: asyncio.Future[None] | None = None  # what waiting iterators wait on
        self._flush_waiters: dict[int, asyncio.Future[Flushed]] = {}
        self._last_flush_id = 0
        self._tasks: dict[asyncio.Task[Any], int | None] = {}  # task -> the session it belongs to (None: the stream)
        self._session = 0  # which connection session is current; a reconnect starts a new one
        self._error: SpeechBridgeError | None = None

    # --- public lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self: S) -> S:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect and set up; ``async with`` calls it for you."""
        if self.state is not StreamState.NEW:
            raise StreamClosed(f"stream is already {self.state.value}", provider=self.provider)
        self.state = StreamState.OPEN
        try:
            await self._open()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop at once: cancel background work and release the connection. Safe to call twice."""
        if self.state is StreamState.CLOSED:
            return
        self.state = StreamState.CLOSED
        others = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        self._reject_flush_waiters(StreamClosed("stream closed before the flush completed", provider=self.provider))
        if self._error is None:
            self._put(StreamClosed("stream was closed", provider=self.provider))
        await self._close()

    def __aiter__(self) -> AsyncIterator[E]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        """Events up to ``StreamEnded``; an error (or closing) is raised to every iterator, now and later."""
        loop = asyncio.get_running_loop()
        while True:
            if self.state is StreamState.ENDED and not self._events:
                return
            while not self._events:
                if self._arrival is None or self._arrival.done():
                    self._arrival = loop.create_future()
                await self._arrival
            item = self._events[0]
            if isinstance(item, BaseException):
                raise item  # stays first: later iterations raise it too
            self._events.popleft()
            yield item
            if isinstance(item, StreamEnded):
                return

    async def collect(self) -> list[E]:
        """Every remaining event up to and including :class:`StreamEnded`."""
        return [event async for event in self]

    # --- for subclasses ---------------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Connect and set up the session."""

    async def _close(self) -> None:
        """Release the connection."""

    @abc.abstractmethod
    async def _send_flush(self, flush_id: int) -> None:
        """Ask the provider to finish what it has; it must later ``_emit(Flushed(flush_id))``."""

    def _ensure_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self.state is StreamState.NEW:
            raise StreamClosed("stream is not open yet: use 'async with provider.stream(...)'", provider=self.provider)
        if self.state is not StreamState.OPEN:
            raise StreamClosed(f"stream is {self.state.value}: no more input is accepted", provider=self.provider)

    def _new_flush(self) -> tuple[int, asyncio.Future[Flushed]]:
        """A fresh flush id and the future its ``Flushed`` resolves."""
        self._last_flush_id += 1
        waiter: asyncio.Future[Flushed] = asyncio.get_running_loop().create_future()
        self._flush_waiters[self._last_flush_id] = waiter
        return self._last_flush_id, waiter

    async def _request_flush(self) -> Flushed:
        flush_id, waiter = self._new_flush()
        await self._send_flush(flush_id)
        return await waiter

    def _emit(self, event: E | StreamEnded | Flushed) -> None:
        if self.state in _OVER:
            return
        if isinstance(event, Flushed):
            waiter = self._flush_waiters.pop(event.flush_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        elif isinstance(event, StreamEnded):
            self.state = StreamState.ENDED
            unconfirmed = StreamClosed("stream ended before the flush was confirmed", provider=self.provider)
            self._reject_flush_waiters(unconfirmed)
        self._put(event)

    def _put(self, item: E | StreamEnded | Flushed | BaseException) -> None:
        self._events.append(item)
        arrival = self._arrival
        if arrival is not None and not arrival.done():
            arrival.set_result(None)

    def _reject_flush_waiters(self, error: SpeechBridgeError) -> None:
        for waiter in self._flush_waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._flush_waiters.clear()

    def _fail(self, error: BaseException) -> None:
        """End the stream with an error: the iterator raises it, and so do pending and later calls."""
        if self._error is not None or self.state in (StreamState.CLOSED, StreamState.ENDED):
            return
        if not isinstance(error, SpeechBridgeError):
            wrapped = SpeechBridgeError(f"stream failed: {error!r}", provider=self.provider)
            wrapped.__cause__ = error
            error = wrapped
        assert isinstance(error, SpeechBridgeError)
        self._error = error
        self.state = StreamState.FAILED
        self._reject_flush_waiters(error)
        self._put(error)

    def _spawn(self, coro: Coroutine[Any, Any, Any], *, session: bool = True) -> asyncio.Task[Any]:
        """Run background work of the current session (or, with ``session=False``, of the whole stream).

        An exception in it goes to :meth:`_session_failed` (or fails the stream).
        """
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[task] = self._session if session else None
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        session = self._tasks.pop(task, None)
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        if session is None:
            self._fail(error)
        else:
            self._session_failed(error, session)

    def _session_failed(self, error: BaseException, session: int) -> None:
        """The connection session ``session`` failed: fail the stream (streams that reconnect override this)."""
        self._fail(error)


S = TypeVar("S", bound=EventStream[Any])
