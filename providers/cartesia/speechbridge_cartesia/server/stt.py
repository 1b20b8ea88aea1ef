"""The STT side of a Cartesia front: ``POST /stt`` and ``/stt/websocket``, served by any STT provider.

The provider's final transcripts become Cartesia deltas (a leading space after the first, as Cartesia's concatenate
verbatim), its interim ones ``is_final: false`` deltas, its ``Flushed`` a ``flush_done`` and its ``StreamEnded`` a
``done``; its VAD and turn events have no Cartesia message and are not sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.audio import AudioFormat, duration_of, identify
from speechbridge.errors import AudioFormatError, InvalidRequest
from speechbridge.events import Flushed, StreamEnded, Transcript
from speechbridge.stt import STTProvider, STTStream

from ..protocol import (
    FINALIZE,
    PROVIDER,
    STT_ENCODINGS,
    WordOut,
    parse_stt_command,
    server_batch_transcript,
    server_done,
    server_flush_done,
    server_transcript,
)

__all__ = ["STTSession", "transcribe_request"]


def _raw_format(query: Mapping[str, str]) -> AudioFormat | None:
    """The raw audio ``encoding`` and ``sample_rate`` of the query name, or None when it names none."""
    encoding = query.get("encoding")
    if encoding is None:
        return None
    if encoding not in STT_ENCODINGS:
        raise InvalidRequest(
            f"encoding {encoding!r} is not supported (accepted: {', '.join(STT_ENCODINGS)})",
            provider=PROVIDER,
            code=400,
        )
    rate = query.get("sample_rate", "")
    if not rate.isdigit() or not 1000 <= int(rate) <= 384000:
        raise InvalidRequest(
            f"sample_rate must be a whole number of Hz with encoding={encoding}, not {rate!r}",
            provider=PROVIDER,
            code=400,
        )
    return AudioFormat(STT_ENCODINGS[encoding], int(rate))  # type: ignore[arg-type]


def _text(form: FormData, name: str, default: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


async def transcribe_request(stt: STTProvider[Any], request: Request) -> dict[str, Any]:
    """The answer to ``POST /stt`` (a ``multipart/form-data`` upload)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest(
            f"expected multipart/form-data, not {content_type or 'no content type'!r}", provider=PROVIDER, code=400
        )
    async with request.form() as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("the form has no 'file' field", provider=PROVIDER, code=400)
        audio = await upload.read()
        language = _text(form, "language", "en")
        wants_words = _text(form, "timestamp_granularities[]", "") == "word"
    raw = _raw_format(request.query_params)
    fmt = raw or identify(audio)
    result = await stt.transcribe(audio, format=fmt)
    words = [WordOut(word.text, word.start_s, word.end_s) for word in result.words]
    duration = duration_of(len(audio), fmt) if fmt.is_raw else result.end_s
    return server_batch_transcript(
        result.text,
        words if wants_words else None,
        duration=duration,
        language=result.language or language,
        request_id=str(uuid.uuid4()),
    )


@attrs.define
class STTSession:
    """One ``/stt/websocket`` connection: binary audio and commands in, Cartesia events out."""

    socket: WebSocket
    stream: STTStream
    language: str
    request_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    _finals_sent: bool = False

    @staticmethod
    def audio_format(query: Mapping[str, str]) -> AudioFormat:
        """The audio the socket's query declares (Cartesia needs ``encoding`` and ``sample_rate``)."""
        fmt = _raw_format(query)
        if fmt is None:
            raise AudioFormatError(
                f"the query needs encoding (accepted: {', '.join(STT_ENCODINGS)}) and sample_rate", provider=PROVIDER
            )
        return fmt

    async def run(self) -> None:
        """Serve until ``close`` is answered with ``done`` or the client leaves."""
        forward = asyncio.create_task(self._forward())
        try:
            await self._receive(forward)
            await forward
        finally:
            forward.cancel()
            await asyncio.gather(forward, return_exceptions=True)

    async def _receive(self, forward: asyncio.Task[None]) -> None:
        while not forward.done():
            receiving = asyncio.ensure_future(self.socket.receive())
            await asyncio.wait({receiving, forward}, return_when=asyncio.FIRST_COMPLETED)
            if not receiving.done():
                receiving.cancel()
                return
            message = receiving.result()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                await self.stream.send_audio(message["bytes"])
            elif parse_stt_command(message.get("text") or "") == FINALIZE:
                await self.stream.flush()
            else:
                await self.stream.end()
                return

    async def _forward(self) -> None:
        async for event in self.stream:
            if isinstance(event, Transcript) and (event.text or not event.is_final):
                await self.socket.send_json(self._transcript(event))
            elif isinstance(event, Flushed):
                await self.socket.send_json(server_flush_done(request_id=self.request_id))
            elif isinstance(event, StreamEnded):
                await self.socket.send_json(server_done(request_id=self.request_id))

    def _transcript(self, event: Transcript) -> dict[str, Any]:
        text = " " + event.text if self._finals_sent and event.text else event.text
        if event.is_final:
            self._finals_sent = True
        words = [WordOut(word.text, word.start_s, word.end_s) for word in event.words] if event.is_final else []
        duration = (event.end_s - event.start_s) if event.start_s is not None and event.end_s is not None else None
        return server_transcript(
            text,
            event.is_final,
            words,
            duration=duration,
            language=event.language or self.language,
            request_id=self.request_id,
        )
