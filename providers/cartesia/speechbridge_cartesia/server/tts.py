"""The TTS side of a Cartesia front: ``POST /tts/bytes``, ``POST /tts/sse`` and the multiplexed ``/tts/websocket``.

Each WebSocket context is one stream of the TTS provider: generation requests become ``send_text`` (joined verbatim),
``flush: true`` a ``flush()`` answered by ``flush_done``, ``continue: false`` an ``end()`` answered by ``done``, and
``cancel`` closes the stream at once. ``generation_config.speed`` is passed to the provider as ``speed``; the other
generation fields (``language``, ``volume``, ``emotion``, ``max_buffer_delay_ms``) do not change a provider's voice
and are not forwarded. A socket holds at most :data:`MAX_CONTEXTS` contexts (more is a 429 ``concurrency_limited``
error), and a context at most :data:`MAX_PENDING_BYTES` of text its provider has not taken: the socket is not read
further until it has, so a client sending faster than speech is made is slowed down instead of filling memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.errors import AudioFormatError, InvalidRequest, SpeechBridgeError
from speechbridge.events import AudioChunk, Flushed, StreamEnded, WordTiming
from speechbridge.tts import Synthesis, TTSProvider, TTSStream

from ..protocol import (
    PROVIDER,
    CancelIn,
    GenerationRequest,
    WordOut,
    parse_tts_message,
    server_chunk,
    server_done,
    server_error,
    server_flush_done,
    server_timestamps,
)
from .failures import failure_of
from .voices import VoiceCatalog

__all__ = ["MAX_CONTEXTS", "MAX_PENDING_BYTES", "TTSSession", "read_generation_request", "sse_messages",
           "synthesize_request"]  # fmt: skip

SSE_CHUNK_S: Final = 0.1
MAX_CONTEXTS: Final = 64  # open at once on one socket (Cartesia: "dozens"); each is a stream of the provider
MAX_PENDING_BYTES: Final = 1024 * 1024
"""Text a context may hold before its provider takes it (about 17 minutes of speech)."""
_REQUEST_BYTES: Final = 256  # what a request costs beyond its transcript: a flood of empty ones counts too
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _backend_options(request: GenerationRequest) -> dict[str, Any]:
    speed = (request.generation_config or {}).get("speed")
    return {"speed": speed} if speed is not None else {}


def read_generation_request(body: bytes) -> GenerationRequest:
    """The JSON body of ``/tts/bytes`` or ``/tts/sse``."""
    try:
        message = json.loads(body)
    except ValueError:
        raise InvalidRequest("the body is not JSON", provider=PROVIDER, code=400) from None
    if not isinstance(message, dict):
        raise InvalidRequest("the body is not a JSON object", provider=PROVIDER, code=400)
    return GenerationRequest.from_json(message)


async def synthesize_request(tts: TTSProvider[Any], voices: VoiceCatalog, request: GenerationRequest) -> Synthesis:
    """The whole synthesis of a REST generation request, in its ``output_format``."""
    if not request.transcript.strip():
        raise InvalidRequest("transcript is empty", provider=PROVIDER, code=400)
    voice = await voices.resolve(request.voice_id)
    return await tts.synthesize(
        request.transcript, voice=voice, format=request.output_format.audio_format, **_backend_options(request)
    )


def sse_messages(request: GenerationRequest, synthesis: Synthesis) -> Iterator[dict[str, Any]]:
    """The ``/tts/sse`` events of a synthesis: audio chunks, the word timestamps when asked for, then ``done``."""
    step = synthesis.format.bytes_for(SSE_CHUNK_S)
    for start in range(0, len(synthesis.audio), step):
        yield server_chunk(synthesis.audio[start : start + step], request.context_id)
    if request.add_timestamps and synthesis.words:
        words = [WordOut(word.text, word.start_s, word.end_s) for word in synthesis.words]
        yield server_timestamps(words, request.context_id)
    yield {**server_done(context_id=request.context_id or ""), "status_code": 200}


class _Context:
    """One ``context_id``: a stream of the provider fed in order by a worker, its events forwarded to the socket."""

    def __init__(self, context_id: str, session: TTSSession) -> None:
        self.context_id = context_id
        self.session = session
        self.requests: asyncio.Queue[GenerationRequest] = asyncio.Queue()
        self.ended = False  # continue: false was received
        self.first: GenerationRequest | None = None
        self.stream: TTSStream | None = None
        self.flushes = 0
        self.pending_bytes = 0
        self._drained = asyncio.Event()
        self.task = asyncio.create_task(self._run())
        self.task.add_done_callback(lambda _: self._drained.set())

    def put(self, request: GenerationRequest) -> None:
        self.first = self.first or request
        self.ended = not request.continue_
        self.pending_bytes += len(request.transcript) + _REQUEST_BYTES
        self.requests.put_nowait(request)

    async def room(self) -> None:
        """Return once the text queued and not yet taken by the provider is within :data:`MAX_PENDING_BYTES`."""
        while self.pending_bytes > MAX_PENDING_BYTES and not self.task.done():
            self._drained.clear()
            await self._drained.wait()

    def _taken(self, request: GenerationRequest) -> None:
        self.pending_bytes -= len(request.transcript) + _REQUEST_BYTES
        if self.pending_bytes <= MAX_PENDING_BYTES:
            self._drained.set()

    async def cancel(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        forward: asyncio.Task[None] | None = None
        try:
            first = await self.requests.get()
            voice = await self.session.voices.resolve(first.voice_id)
            fmt = first.output_format.audio_format
            if not (fmt.is_raw or fmt.encoding == "wav"):
                raise AudioFormatError(
                    f"the WebSocket streams raw or wav audio, not {first.output_format.container}", provider=PROVIDER
                )
            self.stream = self.session.tts.stream(voice=voice, format=fmt, **_backend_options(first))
            async with self.stream as stream:
                forward = asyncio.create_task(self._forward(stream, first.add_timestamps))
                request: GenerationRequest | None = first
                while request is not None:
                    if request.transcript:
                        await stream.send_text(request.transcript)
                    self._taken(request)
                    if request.flush:
                        await stream.flush()
                    if not request.continue_:
                        await stream.end()
                        break
                    request = await self.requests.get()
                await forward
        except SpeechBridgeError as error:
            failure = failure_of(error)
            await self.session.send(
                server_error(
                    failure.message,
                    failure.status,
                    title=failure.title,
                    error_code=failure.error_code,
                    context_id=self.context_id,
                )
            )
        finally:
            if forward is not None:
                forward.cancel()
                await asyncio.gather(forward, return_exceptions=True)
            self.session.finished(self)

    async def _forward(self, stream: TTSStream, timestamps: bool) -> None:
        async for event in stream:
            if isinstance(event, AudioChunk):
                await self.session.send(server_chunk(event.data, self.context_id, self.flushes + 1))
            elif isinstance(event, WordTiming) and timestamps:
                words = [WordOut(event.text, event.start_s, event.end_s)]
                await self.session.send({**server_timestamps(words, self.context_id), "flush_id": self.flushes + 1})
            elif isinstance(event, Flushed):
                self.flushes = event.flush_id
                await self.session.send(server_flush_done(context_id=self.context_id, flush_id=event.flush_id))
            elif isinstance(event, StreamEnded):
                self.session.finished(self)  # a request after 'done' starts a new context
                await self.session.send(server_done(context_id=self.context_id))


class TTSSession:
    """One ``/tts/websocket`` connection, multiplexed by ``context_id``."""

    def __init__(self, socket: WebSocket, tts: TTSProvider[Any], voices: VoiceCatalog) -> None:
        self.socket, self.tts, self.voices = socket, tts, voices
        self.contexts: dict[str, _Context] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.socket.send_json(message)

    def finished(self, context: _Context) -> None:
        if self.contexts.get(context.context_id) is context:
            del self.contexts[context.context_id]

    async def run(self) -> None:
        """Serve until the client leaves; its contexts are cancelled then."""
        try:
            while True:
                message = await self.socket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                text = message.get("text")
                await self._receive(
                    text if text is not None else bytes(message.get("bytes") or b"").decode("utf-8", "replace")
                )
        finally:
            contexts, self.contexts = list(self.contexts.values()), {}
            for context in contexts:
                await context.cancel()

    async def _receive(self, text: str) -> None:
        try:
            started = {key: context.first for key, context in self.contexts.items() if context.first is not None}
            message = parse_tts_message(text, started)
        except SpeechBridgeError as error:
            failure = failure_of(error)
            context_id = _context_id_of(text)
            await self.send(
                server_error(
                    failure.message,
                    failure.status,
                    title=failure.title,
                    error_code=failure.error_code,
                    context_id=context_id,
                )
            )
            return
        assert message.context_id is not None
        context = self.contexts.get(message.context_id)
        if isinstance(message, CancelIn):
            if context is not None:
                del self.contexts[message.context_id]
                await context.cancel()
            return
        if context is not None and context.ended:
            await self.send(
                server_error(
                    f"context {message.context_id!r} already received continue: false",
                    400,
                    title="Bad request",
                    error_code="context_closed",
                    context_id=message.context_id,
                )
            )
            return
        if context is None:
            if len(self.contexts) >= MAX_CONTEXTS:
                await self.send(
                    server_error(
                        f"this socket already has {MAX_CONTEXTS} contexts open: finish or cancel one first",
                        429,
                        title="Too many concurrent requests",
                        error_code="concurrency_limited",
                        context_id=message.context_id,
                    )
                )
                return
            context = self.contexts[message.context_id] = _Context(message.context_id, self)
        context.put(message)
        await context.room()


def _context_id_of(text: str) -> str | None:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    context = message.get("context_id") if isinstance(message, dict) else None
    return str(context) if context is not None else None
