"""The front's text-to-speech: REST synthesis and the ``stream-input`` / ``multi-stream-input`` sockets.

Each context is a backend TTS stream. Audio is sent one chunk late, so the alignment of the words spoken in a
chunk travels with it; when the backend confirms a flush (or ends), every character received so far has been aligned:
words the backend timed get their times, the rest are spread over the audio not yet accounted for.

Limits: a context holds at most :data:`MAX_PENDING_BYTES` of messages its backend has not taken (the socket is not
read further until it has), and at most :data:`MAX_UNALIGNED_CHARS` characters not yet aligned (more, without a
flush, is a ``max_character_limit_exceeded`` error).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.audio import duration_of
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    QuotaExceeded,
    SpeechBridgeError,
    UnknownVoice,
)
from speechbridge.events import AudioChunk, Flushed, StreamEnded, WordTiming
from speechbridge.tts import TTSStream

from ..protocol import (
    MAX_CONTEXTS,
    Alignment,
    CloseContextIn,
    CloseSocketIn,
    TextIn,
    parse_tts_client_message,
    server_audio,
    server_is_final,
    server_tts_error,
)

__all__ = ["MAX_PENDING_BYTES", "MAX_UNALIGNED_CHARS", "SocketSession", "TextAligner", "is_unknown_voice",
           "socket_error"]  # fmt: skip

POLICY: Final = 1008
MAX_PENDING_BYTES: Final = 1024 * 1024
"""Text a context may hold before its backend takes it."""
MAX_UNALIGNED_CHARS: Final = 100_000
"""Characters received and not yet aligned (the backend has not timed them and no flush came): about 1.5 h of speech."""
_MESSAGE_BYTES: Final = 256  # what a message costs beyond its text: a flood of empty ones counts too
_TOKEN = re.compile(r"\s*\S+")

StreamFactory = Callable[[], Awaitable[TTSStream]]


class TextAligner:
    """Characters received, times from the backend's word timings; alignment is cut per outgoing chunk."""

    def __init__(self) -> None:
        self.text = ""  # received, not yet aligned
        self.timed: list[tuple[str, float, float]] = []  # (piece with its leading whitespace, start, end)
        self.aligned_until = 0.0

    def receive(self, text: str) -> None:
        self.text += text

    def word(self, timing: WordTiming) -> None:
        match = _TOKEN.match(self.text)
        if match is None:
            return
        self.text = self.text[match.end() :]
        self.timed.append((match.group(), timing.start_s, timing.end_s))
        self.aligned_until = max(self.aligned_until, timing.end_s)

    def settle(self, audio_end_s: float) -> None:
        """Time what is left (words the backend did not time) over the audio after the last timed word."""
        pieces = _TOKEN.findall(self.text)
        self.text = ""
        if not pieces:
            return
        start = min(self.aligned_until, audio_end_s)
        step = max(0.0, audio_end_s - start) / len(pieces)
        for index, piece in enumerate(pieces):
            self.timed.append((piece, start + index * step, start + (index + 1) * step))
        self.aligned_until = max(self.aligned_until, audio_end_s)

    def take(self, chunk_start_s: float, chunk_end_s: float | None = None) -> Alignment | None:
        """The alignment of the timed words that start before ``chunk_end_s`` (all when None), relative to a chunk
        starting at ``chunk_start_s``."""
        count = len(self.timed) if chunk_end_s is None else sum(1 for _, start, _ in self.timed if start < chunk_end_s)
        if not count:
            return None
        taken, self.timed = self.timed[:count], self.timed[count:]
        text = "".join(piece for piece, _, _ in taken)
        return Alignment.of_words(
            text, [(piece.strip(), start, end) for piece, start, end in taken], offset_s=chunk_start_s
        )


def _cost(message: TextIn | None) -> int:
    return len(message.text or "") + _MESSAGE_BYTES if message is not None else 0


class _Context:
    """One context: its backend stream, and the chunk held back for its alignment."""

    def __init__(self, session: SocketSession, context_id: str | None, stream: TTSStream) -> None:
        self.session, self.context_id, self.stream = session, context_id, stream
        self.aligner = TextAligner()
        self.audio_s = 0.0
        self.held: tuple[bytes, float] | None = None  # (audio, its start)
        self.inbox: asyncio.Queue[TextIn | None] = asyncio.Queue()
        self.pending_bytes = 0
        self._drained = asyncio.Event()
        self.tasks = [asyncio.create_task(self._work()), asyncio.create_task(self._pump())]
        self.tasks[0].add_done_callback(lambda _: self._drained.set())

    def put(self, message: TextIn | None) -> None:
        self.pending_bytes += _cost(message)
        self.inbox.put_nowait(message)

    async def room(self) -> None:
        """Return once the messages queued and not yet taken by the backend are within :data:`MAX_PENDING_BYTES`."""
        while self.pending_bytes > MAX_PENDING_BYTES and not self.tasks[0].done():
            self._drained.clear()
            await self._drained.wait()

    async def _work(self) -> None:
        while (message := await self.inbox.get()) is not None:
            self.pending_bytes -= _cost(message)
            if self.pending_bytes <= MAX_PENDING_BYTES:
                self._drained.set()
            if message.text:
                self.aligner.receive(message.text)
                if len(self.aligner.text) > MAX_UNALIGNED_CHARS:
                    raise _TooMuchText(
                        f"more than {MAX_UNALIGNED_CHARS} characters were sent without a flush: "
                        "send 'flush': true (or close the context) now and then"
                    )
                await self.stream.send_text(message.text)
            if message.flush:
                await self.stream.flush()
            elif message.text == "" and self.context_id is None:  # the single-context EOS
                break
        await self.stream.end()

    async def _pump(self) -> None:
        async for event in self.stream:
            if isinstance(event, WordTiming):
                self.aligner.word(event)
            elif isinstance(event, AudioChunk):
                await self._release()
                self.held = (event.data, self.audio_s)
                self.audio_s += duration_of(len(event.data), event.format)
            elif isinstance(event, Flushed):
                self.aligner.settle(self.audio_s)
                await self._release(force=True)
            elif isinstance(event, StreamEnded):
                self.aligner.settle(self.audio_s)
                await self._release(force=True)
                await self.session.send(server_is_final(self.context_id))
                return

    async def _release(self, *, force: bool = False) -> None:
        """Send the held chunk with the words starting in it (``force``: with every word left)."""
        if self.held is None:
            alignment = self.aligner.take(self.audio_s) if force else None
            if alignment is not None:
                await self.session.send(server_audio(b"", alignment, self.context_id))
            return
        data, start = self.held
        self.held = None
        alignment = self.aligner.take(start, None if force else self.audio_s)
        await self.session.send(server_audio(data, alignment, self.context_id))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.stream.aclose()


class SocketSession:
    """One TTS socket (``multi`` for ``multi-stream-input``): contexts made by ``open_stream`` on first use."""

    def __init__(
        self, websocket: WebSocket, open_stream: StreamFactory, *, multi: bool, first: str | None = None
    ) -> None:
        self.websocket, self.open_stream, self.multi = websocket, open_stream, multi
        self._first = first
        self.contexts: dict[str | None, _Context] = {}
        self._send_lock = asyncio.Lock()
        self._failed: asyncio.Future[SpeechBridgeError] = asyncio.get_running_loop().create_future()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def run(self) -> None:
        receiver = asyncio.create_task(self._receive())
        try:
            waiting: list[asyncio.Future[Any]] = [receiver, self._failed]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            error = self._failed.result() if self._failed.done() else receiver.exception()
            if isinstance(error, SpeechBridgeError):
                await self.refuse(error)
            elif error is not None:
                raise error
        finally:
            receiver.cancel()
            with contextlib.suppress(BaseException):
                await receiver
            await asyncio.gather(*(context.close() for context in self.contexts.values()), return_exceptions=True)

    async def refuse(self, error: SpeechBridgeError) -> None:
        kind, code = socket_error(error)
        with contextlib.suppress(Exception):
            await self.send(server_tts_error(kind, error.message, code))
            await self.websocket.close(code, kind)

    async def _receive(self) -> None:
        while True:
            if self._first is not None:
                frame, self._first = self._first, None
            else:
                try:
                    frame = await self.websocket.receive_text()
                except (WebSocketDisconnect, RuntimeError):
                    return
            message = parse_tts_client_message(frame)
            if isinstance(message, CloseSocketIn):
                await self._finish_all()
                return
            if isinstance(message, CloseContextIn):
                context = self.contexts.get(message.context_id)
                if context is not None:
                    context.put(None)
                continue
            context_id = message.context_id if self.multi else None
            if self.multi and context_id is None:
                context_id = "default"  # ElevenLabs' name for the context of messages that name none
            context = self.contexts.get(context_id)
            if context is None:
                if message.text == "" and not message.flush:
                    continue  # a keep-alive or EOS for a context that never started
                if len(self.contexts) >= MAX_CONTEXTS and self.multi:
                    raise _TooMany(f"Maximum simultaneous contexts per WebSocket connection exceeded ({MAX_CONTEXTS})")
                context = _Context(self, context_id, await self.open_stream())
                for task in context.tasks:
                    task.add_done_callback(self._watch)
                self.contexts[context_id] = context
            if self.multi and message.text == "" and not message.flush:
                continue  # a keep-alive
            context.put(message)
            await context.room()
            if not self.multi and message.text == "" and not message.flush:
                await asyncio.wait(context.tasks)
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await self.websocket.close(1000)
                return

    async def _finish_all(self) -> None:
        for context in self.contexts.values():
            context.put(None)
        await asyncio.gather(*(asyncio.wait(context.tasks) for context in self.contexts.values()))
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.websocket.close(1000)

    def _watch(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._failed.done():
            return
        error = task.exception()
        if error is not None:
            self._failed.set_result(error if isinstance(error, SpeechBridgeError) else SpeechBridgeError(repr(error)))


class _TooMany(QuotaExceeded):
    pass


class _TooMuchText(QuotaExceeded):
    pass


def socket_error(error: SpeechBridgeError) -> tuple[str, int]:
    """The ``error`` kind and close code a TTS socket reports ``error`` with."""
    if isinstance(error, _TooMany):
        return "max_active_conversations", POLICY
    if isinstance(error, _TooMuchText):
        return "max_character_limit_exceeded", POLICY
    if isinstance(error, AuthenticationError):
        return "invalid_api_key", POLICY
    if is_unknown_voice(error):
        return "voice_not_found", POLICY
    if isinstance(error, (ConfigError, AudioFormatError, ProtocolError, InvalidRequest)):
        return "invalid_request", POLICY
    if isinstance(error, QuotaExceeded):
        return "quota_exceeded", POLICY
    return "internal_error", 1011


def is_unknown_voice(error: SpeechBridgeError) -> bool:
    """Whether the backend (or the front's voice check) refused the voice."""
    return isinstance(error, UnknownVoice) or (isinstance(error, ConfigError) and "voice" in error.message.lower())
