"""The ``/v1/speak`` WebSocket of a Deepgram front: ``Speak`` text in, binary audio out, over any TTS provider.

``Metadata`` is sent on open. ``Flush`` is answered by ``Flushed`` once the backend has delivered the flushed text's
audio; ``Clear`` drops the backend stream (its pending text and audio) for a fresh one and is answered by ``Cleared``;
``Close`` speaks the rest, then the socket closes with 1000. ``Flushed`` and ``Cleared`` share one ``sequence_id``
counter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.audio import AudioFormat
from speechbridge.errors import ProtocolError
from speechbridge.events import AudioChunk, Flushed, StreamEnded
from speechbridge.tts import TTSProvider, TTSStream

from ..protocol import (
    Clear,
    Close,
    Flush,
    Speak,
    parse_client_message,
    server_cleared,
    server_flushed,
    server_speak_metadata,
)
from .listen import close_code_for, forget_when_done

__all__ = ["SpeakSession"]


class SpeakSession:
    """One live synthesis socket; ``options`` are the backend's stream options (voice, speed)."""

    def __init__(
        self,
        websocket: WebSocket,
        backend: TTSProvider[Any],
        format: AudioFormat,
        model: str,
        options: Mapping[str, Any],
        request_id: str,
    ) -> None:
        self.websocket = websocket
        self.backend = backend
        self.format = format
        self.model = model
        self.options = dict(options)
        self.request_id = request_id
        self._sequence_id = 0
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        """Serve the socket until ``Close`` is done or the client leaves; failures close it with Deepgram's codes."""
        stream: TTSStream | None = None
        consumer: asyncio.Task[None] | None = None
        flushes: set[asyncio.Task[Any]] = set()
        try:
            stream = await self._open()
            consumer = asyncio.create_task(self._forward(stream))
            await self._send_json(server_speak_metadata(self.request_id, self.model))
            while True:
                receiving = asyncio.create_task(self.websocket.receive())
                done, _ = await asyncio.wait({receiving, consumer}, return_when=asyncio.FIRST_COMPLETED)
                if consumer in done:
                    receiving.cancel()
                    await consumer  # raises the backend's failure
                    break
                message = receiving.result()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                if message.get("text") is None:
                    raise ProtocolError("/v1/speak takes JSON text messages, not binary frames")
                parsed = parse_client_message(message["text"])
                if isinstance(parsed, Speak):
                    await stream.send_text(parsed.text)
                elif isinstance(parsed, Flush):
                    flush = asyncio.create_task(stream.flush())
                    flushes.add(flush)
                    flush.add_done_callback(forget_when_done(flushes))
                elif isinstance(parsed, Clear):
                    consumer.cancel()
                    await stream.aclose()
                    stream = await self._open()
                    consumer = asyncio.create_task(self._forward(stream))
                    await self._send_json(server_cleared(self._next_sequence_id()))
                elif isinstance(parsed, Close):
                    await stream.end()
                    await consumer
                    break
                else:
                    raise ProtocolError(f"{type(parsed).__name__} is not a /v1/speak message")
        except WebSocketDisconnect:
            return
        except Exception as error:
            code, reason = close_code_for(error)
            await self.websocket.close(code, reason)
            return
        finally:
            if consumer is not None:
                consumer.cancel()
            if stream is not None:
                await stream.aclose()
        await self.websocket.close(1000)

    async def _open(self) -> TTSStream:
        stream = self.backend.stream(format=self.format, **self.options)
        await stream.open()
        return stream

    async def _forward(self, stream: TTSStream) -> None:
        async for event in stream:
            if isinstance(event, AudioChunk):
                async with self._send_lock:
                    await self.websocket.send_bytes(event.data)
            elif isinstance(event, Flushed):
                await self._send_json(server_flushed(self._next_sequence_id()))
            elif isinstance(event, StreamEnded):
                return

    def _next_sequence_id(self) -> int:
        sequence_id, self._sequence_id = self._sequence_id, self._sequence_id + 1
        return sequence_id

    async def _send_json(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))
