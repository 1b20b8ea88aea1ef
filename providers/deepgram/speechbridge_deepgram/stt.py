"""Deepgram speech-to-text: ``POST /v1/listen`` for recordings, the ``/v1/listen`` WebSocket for live audio.

Live results map onto the common events: interim ``Results`` become interim transcripts, final ones final
transcripts; ``speech_final`` and ``UtteranceEnd`` end the turn (``TurnEnded`` with reason ``vendor``);
``SpeechStarted`` passes through; ``flush()`` sends ``Finalize`` and is confirmed by the result with
``from_finalize: true``; ``end()`` sends ``CloseStream`` and the stream ends on the ``Metadata`` that answers it.
A dropped socket opens a new one and replays the audio no final result covers (see :class:`DeepgramSTTStream`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any, ClassVar

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import AudioFormatError, InvalidRequest, ProtocolError, SpeechBridgeError, TransportError
from speechbridge.events import Flushed, Ready, SpeechStarted, StreamEnded, Transcript, TurnEnded
from speechbridge.streams import StreamState
from speechbridge.stt import STTCapabilities, STTProvider, STTStream
from speechbridge.transports import send_request
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error, connect_websocket

from .client import DeepgramClient
from .protocol import (
    LISTEN_PATH,
    PROVIDER,
    STT_ENCODINGS,
    ErrorMessage,
    Metadata,
    Results,
    SpeechStartedMessage,
    UtteranceEnd,
    client_close_stream,
    client_finalize,
    client_keep_alive,
    error_from_close,
    error_from_rest,
    parse_listen_response,
    parse_server_message,
    query_value,
)
from .settings import DeepgramSTTSettings

__all__ = ["DeepgramSTT", "DeepgramSTTStream", "wire_format_for"]

_CONTAINER_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg_opus": "audio/ogg", "mp3": "audio/mpeg"}
_ENCODING_OF = {format_name: encoding for encoding, format_name in STT_ENCODINGS.items()}


def wire_format_for(format: AudioFormat, settings: DeepgramSTTSettings) -> AudioFormat:
    """The format streamed audio is sent in: the settings' ``encoding``/``sample_rate``, else the input's own when
    Deepgram takes it (containers it detects itself), else ``linear16`` at the input's rate."""
    rate = settings.sample_rate or format.sample_rate or 16000
    if not format.is_raw and settings.encoding is None and settings.sample_rate is None:
        return format
    if settings.encoding is not None:
        return AudioFormat(STT_ENCODINGS[settings.encoding], rate)  # type: ignore[arg-type]
    if format.encoding in _ENCODING_OF and format.channels == 1 and settings.sample_rate in (None, format.sample_rate):
        return format
    return AudioFormat.pcm16(rate)


class DeepgramSTT(DeepgramClient, STTProvider[DeepgramSTTSettings]):
    """Deepgram Nova recognition. ``DeepgramSTT(api_key=..., model="nova-3", endpointing=300)``."""

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = DeepgramSTTSettings
    capabilities: ClassVar[STTCapabilities] = STTCapabilities(
        interim_results=True, word_timestamps=True, flush=True, vad=True, turn_detection=True
    )

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: DeepgramSTTSettings) -> Transcript:
        query = settings.query()
        if format.is_raw:
            if len(audio) % format.frame_width:
                raise AudioFormatError(
                    f"{format} audio is truncated: {len(audio)} bytes is not a whole number of "
                    f"{format.frame_width}-byte sample frames",
                    provider=self.name,
                )
            wire = format if format.encoding in ("pcm_s16le", "mulaw") and format.channels == 1 else None
            if wire is None:
                pcm = decode(audio, format)
                audio, wire = pcm.data, pcm.format
            query += [("encoding", _ENCODING_OF[wire.encoding]), ("sample_rate", query_value(wire.sample_rate))]
            content_type = "application/octet-stream"
        else:
            content_type = _CONTAINER_TYPES[format.encoding]
        url = self.url(settings.api_url, LISTEN_PATH, query)
        response = await send_request(
            self._client(),
            "POST",
            url,
            provider=self.name,
            mapper=error_from_rest,
            secrets=self.secrets(),
            content=audio,
            headers={**self.auth_headers(), "Content-Type": content_type},
        )
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError(
                f"/v1/listen answered with non-JSON: {response.text[:80]!r}", provider=self.name
            ) from None
        text, words, confidence, language = parse_listen_response(body)
        return Transcript(
            text.strip(),
            True,
            words[0].start_s if words else None,
            words[-1].end_s if words else None,
            words,
            confidence=confidence if text.strip() else None,
            language=language or settings.language,
        )

    def _stream(self, format: AudioFormat, settings: DeepgramSTTSettings) -> DeepgramSTTStream:
        return DeepgramSTTStream(self, format, settings)


class DeepgramSTTStream(STTStream):
    """A live recognition over ``/v1/listen`` WebSockets.

    **Drops.** When the socket drops (cut, dead peer, a close before ``Metadata``, a retryable close code), a new
    socket is opened as :class:`~speechbridge.stt.STTStream` describes: the audio after the last final result or
    confirmed ``Finalize`` is sent again, then the ``Finalize`` messages still unanswered (each confirmed by the new
    socket's ``from_finalize`` result) and ``CloseStream`` if ``end()`` was called. The turn's final text so far is
    kept; interim results of the dead socket are superseded.
    """

    reconnectable: ClassVar[bool] = True

    def __init__(self, stt: DeepgramSTT, format: AudioFormat, settings: DeepgramSTTSettings) -> None:
        super().__init__(
            stt.name,
            format=format,
            wire_format=wire_format_for(format, settings),
            frame_ms=100.0,
            reliability=stt.reliability,
        )
        self._stt = stt
        self._settings = settings
        self._ws: WebSocket | None = None
        self._pending_flushes: collections.deque[int] = collections.deque()  # this socket's unanswered Finalize
        self._turn_text: list[str] = []
        self._last_sent = time.monotonic()

    async def _open(self) -> None:
        self._pending_flushes.clear()
        wire = self.wire_format
        query = self._settings.stream_query()
        if wire.is_raw:
            query += [
                ("encoding", _ENCODING_OF[wire.encoding]),
                ("sample_rate", str(wire.sample_rate)),
                ("channels", "1"),
            ]
        self._ws = await connect_websocket(
            self._stt.url(self._settings.ws_url, LISTEN_PATH, query),
            provider=self.provider,
            headers=self._stt.auth_headers(),
            open_timeout=self._settings.timeout_s,
            dead_peer_timeout_s=self._stt.reliability.dead_peer_timeout_s,
            http_error=error_from_rest,
            secrets=self._stt.secrets(),
        )
        self._last_sent = time.monotonic()
        request_id = self._ws.response_headers.get("dg-request-id")
        self._emit(Ready(request_id=request_id, sample_rate=wire.sample_rate))
        self._spawn(self._read(self._ws))
        self._spawn(self._keep_alive())

    async def _send_frame(self, frame: bytes) -> None:
        await self._send(frame)

    async def _send_flush(self, flush_id: int) -> None:
        self._pending_flushes.append(flush_id)
        await self._send(json.dumps(client_finalize()))

    async def _send_end(self) -> None:
        await self._send(json.dumps(client_close_stream()))

    async def _close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _send(self, data: bytes | str) -> None:
        assert self._ws is not None
        try:
            await self._ws.send(data)
        except WebSocketClosed as exc:
            raise self._closed(exc) from None
        self._last_sent = time.monotonic()

    async def _keep_alive(self) -> None:
        interval = self._settings.keepalive_s
        while True:
            await asyncio.sleep(interval - (time.monotonic() - self._last_sent))
            if time.monotonic() - self._last_sent >= interval and self.state is StreamState.OPEN:
                await self._send(json.dumps(client_keep_alive()))

    async def _read(self, ws: WebSocket) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    raise ProtocolError("the server sent binary data on /v1/listen", provider=self.provider)
                self._handle(parse_server_message(frame))
        except WebSocketClosed as exc:
            raise self._closed(exc) from None
        if self.state is StreamState.OPEN:
            raise TransportError("the server closed the stream before CloseStream was sent", provider=self.provider)
        if self.state is StreamState.ENDING:
            raise TransportError("the server closed the stream before its Metadata", provider=self.provider)

    def _closed(self, exc: WebSocketClosed) -> SpeechBridgeError:
        return closed_error(exc, provider=self.provider, mapper=error_from_close, secrets=self._stt.secrets())

    def _handle(self, message: Any) -> None:
        if isinstance(message, Results):
            self._results(message)
        elif isinstance(message, UtteranceEnd):
            self._end_turn(message.last_word_end)
        elif isinstance(message, SpeechStartedMessage):
            self._emit(SpeechStarted(message.timestamp))
        elif isinstance(message, Metadata):
            self._emit(StreamEnded())
        elif isinstance(message, ErrorMessage):
            raise InvalidRequest(message.description, provider=self.provider, code=message.variant)

    def _results(self, results: Results) -> None:
        text = results.transcript.strip()
        end_s = results.start + results.duration
        if text:
            words = results.words if results.is_final else ()
            self._emit(Transcript(text, results.is_final, results.start, end_s, words, confidence=results.confidence))
            if results.is_final:
                self._turn_text.append(text)
        if results.is_final and results.speech_final:
            self._end_turn(end_s)
        if results.from_finalize and self._pending_flushes:
            self._emit(Flushed(self._pending_flushes.popleft()))

    def _end_turn(self, time_s: float) -> None:
        if self._turn_text:
            self._emit(TurnEnded(" ".join(self._turn_text), "vendor", time_s))
            self._turn_text = []
