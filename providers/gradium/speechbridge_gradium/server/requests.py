"""One Gradium request inside a front: a setup, the messages that follow it, and the replies it sends back.

A request does not know whether it travels over a WebSocket (alone or multiplexed) or over REST: it talks to a
:class:`Channel`. Its messages are handled in order by one worker task; what the backend produces is read by a
second task and sent as it comes. Every reply carries the request's ``client_req_id`` when it has one. A request
holds at most :data:`MAX_PENDING_BYTES` of messages its worker has not handled yet: a socket waits for
:meth:`Request.room` before it reads on, so a client sending faster than the backend takes is slowed down by TCP
instead of filling memory.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from ..protocol import AudioIn, ClientMessage, EndOfStreamIn, Setup, TextIn, with_request
from .failures import RequestError

__all__ = ["MAX_PENDING_BYTES", "Channel", "Request"]

MAX_PENDING_BYTES: Final = 4 * 1024 * 1024
"""Audio and text bytes a request may hold before its worker handles them (87 s of 24 kHz pcm)."""
_MESSAGE_BYTES: Final = 256  # what a message costs beyond its payload: a flood of empty ones counts too


def _cost(message: ClientMessage) -> int:
    payload = message.audio if isinstance(message, AudioIn) else message.text if isinstance(message, TextIn) else ""
    return len(payload) + _MESSAGE_BYTES


class Channel(Protocol):
    """Where a request's replies go: a WebSocket or a REST response."""

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message (already stamped with the request's ``client_req_id``)."""

    async def request_done(self, request: Request) -> None:
        """The request sent its ``end_of_stream``."""

    async def request_failed(self, request: Request, error: RequestError) -> None:
        """The request cannot go on: report ``error`` and stop the request."""


class Request(abc.ABC):
    """The lifecycle every request shares; subclasses do the STT or TTS work."""

    def __init__(self, channel: Channel, setup: Setup) -> None:
        self.channel = channel
        self.setup = setup
        self.request_id = str(uuid.uuid4())
        self.finished = False
        self._inbox: asyncio.Queue[ClientMessage] = asyncio.Queue()
        self._pending_bytes = 0
        self._drained = asyncio.Event()
        self._taking = True  # the worker still takes messages (until end_of_stream)
        self._tasks: set[asyncio.Task[None]] = set()
        self._opened = False

    @property
    def client_req_id(self) -> str | None:
        return self.setup.client_req_id

    async def open(self) -> None:
        """Validate the setup, open the backend and send ``ready``; raises :class:`RequestError`."""
        if not self._opened:
            self._opened = True
            await self._open()

    def start(self) -> None:
        """Open (if not done yet), then handle the messages put in, in order."""
        self.spawn(self._work)

    def put(self, message: ClientMessage) -> None:
        """Queue a message for the worker (one after ``end_of_stream`` is ignored, as it always was)."""
        if self._taking:
            self._pending_bytes += _cost(message)
            self._inbox.put_nowait(message)

    async def room(self) -> None:
        """Return once the messages queued and not yet handled are within :data:`MAX_PENDING_BYTES`."""
        while self._pending_bytes > MAX_PENDING_BYTES and self._taking and not self.finished:
            self._drained.clear()
            await self._drained.wait()

    def _handled(self, message: ClientMessage) -> None:
        self._pending_bytes -= _cost(message)
        if self._pending_bytes <= MAX_PENDING_BYTES:
            self._drained.set()

    def _stop_taking(self) -> None:
        self._taking = False
        self._drained.set()

    async def emit(self, message: dict[str, Any]) -> None:
        if not self.finished:
            await self.channel.send(with_request(message, self.client_req_id))

    async def done(self) -> None:
        """Called after ``end_of_stream`` was sent."""
        if not self.finished:
            self.finished = True
            self._stop_taking()
            await self.channel.request_done(self)

    async def fail(self, error: BaseException) -> None:
        if self.finished:
            return
        self.finished = True
        self._stop_taking()
        await self.channel.request_failed(self, RequestError.from_error(error))

    def spawn(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``work(*args)`` as a task of this request; its failure fails the request."""
        task = asyncio.get_running_loop().create_task(self._guard(work, *args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Stop all work and release the backend (the client left, or the request failed)."""
        self.finished = True
        self._stop_taking()
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._release()

    async def _guard(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await work(*args)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # any failure becomes an error reply, never a dead socket
            await self.fail(error)

    async def _work(self) -> None:
        await self.open()
        while not self.finished:
            message = await self._inbox.get()
            await self._handle(message)
            self._handled(message)
            if isinstance(message, EndOfStreamIn):
                self._stop_taking()
                return

    @abc.abstractmethod
    async def _open(self) -> None:
        """Validate, open the backend, send ``ready``."""

    @abc.abstractmethod
    async def _handle(self, message: ClientMessage) -> None:
        """One client message after the setup."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Close the backend stream."""
