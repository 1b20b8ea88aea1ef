"""The ``/v1/listen`` WebSocket of a Deepgram front: binary audio in, ``Results`` out, over any STT provider.

A final transcript is held until the backend's next event, so that the result before a turn end carries
``speech_final: true`` and the result a ``Finalize`` produced carries ``from_finalize: true`` (an empty one when the
finalize produced no text). ``UtteranceEnd`` follows a turn end when ``utterance_end_ms`` is set; ``SpeechStarted``
is sent when ``vad_events=true``. ``CloseStream`` (or an empty binary frame) ends the backend stream; the front then
sends ``Metadata`` and closes with 1000. A text frame it cannot understand is answered in band with an ``Error``
(``SchemaError``), as Deepgram does.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.audio import AudioFormat
from speechbridge.errors import AudioFormatError, ConfigError, InvalidRequest, ProtocolError
from speechbridge.events import Flushed, SpeechStarted, StreamEnded, Transcript, TurnEnded
from speechbridge.settings import settings_fields
from speechbridge.stt import STTProvider, STTStream

from ..protocol import (
    CLOSE_DATA,
    CLOSE_NET,
    CloseStream,
    Configure,
    Finalize,
    KeepAlive,
    Results,
    parse_client_message,
    server_error,
    server_metadata,
    server_results,
    server_speech_started,
    server_utterance_end,
    stt_wire_format,
)

__all__ = ["ListenSession", "close_code_for", "forget_when_done", "now_iso", "stream_options"]

_REFUSED = (AudioFormatError, ConfigError, InvalidRequest, ProtocolError)


def close_code_for(error: BaseException) -> tuple[int, str]:
    """Deepgram's close code and reason for a failure: 1008 ``DATA-0000`` for what the client sent, else 1011."""
    code, tag = CLOSE_DATA if isinstance(error, _REFUSED) else CLOSE_NET
    return code, f"{tag}: {error}"[:120]


def _flag(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "false").lower() == "true"


def stream_options(backend: STTProvider[Any], params: Mapping[str, str]) -> dict[str, Any]:
    """The backend options the query asks for: ``language`` (``multi`` means the backend's default)."""
    language = params.get("language")
    if not language or language == "multi":
        return {}
    if "language" not in settings_fields(backend.Settings):
        raise ConfigError(f"language={language!r} cannot be chosen on this server's {backend.name} backend")
    return {"language": language.split("-")[0].lower()}


def now_iso() -> str:
    """The current UTC time as Deepgram writes ``created``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def forget_when_done(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback that drops a finished flush from ``tasks`` (its failure, if any, already ended the stream)."""

    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done


class ListenSession:
    """One live recognition: the client's socket and the backend stream."""

    def __init__(
        self, websocket: WebSocket, backend: STTProvider[Any], params: Mapping[str, str], request_id: str
    ) -> None:
        self.websocket = websocket
        self.backend = backend
        self.params = params
        self.request_id = request_id
        self.model = params.get("model", "nova-3")
        self.interim_results = _flag(params, "interim_results")
        self.vad_events = _flag(params, "vad_events")
        self.utterance_end = "utterance_end_ms" in params and self.interim_results
        self._held: Transcript | None = None
        self._send_lock = asyncio.Lock()
        self._duration_s = 0.0

    def wire_format(self) -> AudioFormat:
        encoding = self.params.get("encoding")
        if encoding is None:
            raise AudioFormatError("this server needs encoding and sample_rate for live audio (e.g. linear16, 16000)")
        try:
            sample_rate = int(self.params.get("sample_rate", ""))
        except ValueError:
            raise AudioFormatError("sample_rate must be an integer number of Hz when encoding is given") from None
        return stt_wire_format(encoding, sample_rate)

    async def run(self) -> None:
        """Serve the socket until the client closes it or the stream ends; failures close it with Deepgram's codes."""
        try:
            wire = self.wire_format()
            stream = self.backend.stream(format=wire, **stream_options(self.backend, self.params))
            async with stream:
                consumer = asyncio.create_task(self._forward(stream, wire))
                try:
                    await self._receive(stream, consumer)
                    await consumer
                finally:
                    consumer.cancel()
        except WebSocketDisconnect:
            return
        except Exception as error:
            code, reason = close_code_for(error)
            await self.websocket.close(code, reason)
            return
        await self.websocket.close(1000)

    async def _receive(self, stream: STTStream, consumer: asyncio.Task[None]) -> None:
        flushes: set[asyncio.Task[Any]] = set()
        receiving = asyncio.create_task(self.websocket.receive())
        while True:
            done, _ = await asyncio.wait({receiving, consumer}, return_when=asyncio.FIRST_COMPLETED)
            if consumer in done:
                receiving.cancel()
                return
            message = receiving.result()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data, text = message.get("bytes"), message.get("text")
            if text is not None:
                try:
                    parsed = parse_client_message(text)
                except ProtocolError as error:
                    await self._send(server_error(error.message, text[:200]))
                    receiving = asyncio.create_task(self.websocket.receive())
                    continue
                if isinstance(parsed, CloseStream):
                    await stream.end()
                    return
                await self._control(stream, parsed, flushes)
            elif data:
                await stream.send_audio(data)
            elif data is not None:  # an empty binary frame closes the stream, as on Deepgram
                await stream.end()
                return
            receiving = asyncio.create_task(self.websocket.receive())

    async def _control(self, stream: STTStream, message: object, flushes: set[asyncio.Task[Any]]) -> None:
        if isinstance(message, Finalize):
            task = asyncio.create_task(stream.flush())
            flushes.add(task)
            task.add_done_callback(forget_when_done(flushes))
        elif isinstance(message, Configure):
            await self._send(
                {
                    "type": "ConfigureFailure",
                    "request_id": self.request_id,
                    "code": "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
                    "description": "this server cannot reconfigure a live stream",
                }
            )
        elif not isinstance(message, KeepAlive):
            raise ProtocolError(f"{type(message).__name__} is not a /v1/listen message")

    async def _forward(self, stream: STTStream, wire: AudioFormat) -> None:
        async for event in stream:
            if isinstance(event, Transcript) and event.is_final:
                await self._release()
                self._held = event
            elif isinstance(event, Transcript):
                if self.interim_results:
                    await self._release()
                    await self._send_transcript(event)
            elif isinstance(event, TurnEnded):
                await self._release(speech_final=True)
                if self.utterance_end:
                    await self._send(server_utterance_end(event.time_s or self._duration_s))
            elif isinstance(event, Flushed):
                await self._release(from_finalize=True, always=True)
            elif isinstance(event, SpeechStarted):
                await self._release()
                if self.vad_events:
                    await self._send(server_speech_started(event.time_s))
            elif isinstance(event, StreamEnded):
                await self._release()
                self._duration_s = max(self._duration_s, stream.wire_bytes_sent / wire.bytes_for(1.0))
                await self._send(server_metadata(self.request_id, self._duration_s, self.model, now_iso()))

    async def _release(self, *, speech_final: bool = False, from_finalize: bool = False, always: bool = False) -> None:
        held, self._held = self._held, None
        if held is None and always:
            held = Transcript("", True, self._duration_s, self._duration_s)
        if held is not None:
            await self._send_transcript(held, speech_final=speech_final, from_finalize=from_finalize)

    async def _send_transcript(
        self, transcript: Transcript, *, speech_final: bool = False, from_finalize: bool = False
    ) -> None:
        start = transcript.start_s if transcript.start_s is not None else self._duration_s
        end = transcript.end_s if transcript.end_s is not None else start
        self._duration_s = max(self._duration_s, end)
        results = Results(
            transcript.text,
            transcript.is_final,
            speech_final and transcript.is_final,
            from_finalize,
            start,
            max(0.0, end - start),
            transcript.words,
            transcript.confidence,
        )
        await self._send(server_results(results, request_id=self.request_id, model=self.model))

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))
