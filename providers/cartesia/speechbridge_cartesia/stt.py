"""Cartesia speech-to-text: one-shot over ``POST /stt`` (multipart), live over ``/stt/websocket``.

Raw mono audio Cartesia names (16-bit or float PCM at any rate, μ-law, A-law) is sent as it is, with its ``encoding``
and ``sample_rate``; WAV, FLAC, MP3 and Ogg files go to ``/stt`` unchanged; anything else is converted by
:mod:`speechbridge.audio` to 16-bit mono PCM.
"""

from __future__ import annotations

import collections
import json
from typing import Any, ClassVar, Final

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import AudioFormatError, ProtocolError
from speechbridge.events import Flushed, Ready, StreamEnded, Transcript, TurnEnded, Word
from speechbridge.stt import STTCapabilities, STTProvider, STTStream
from speechbridge.transports import scrub_error, send_request
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error

from .client import CartesiaClient, Credentials, ended_error
from .protocol import (
    CLOSE,
    FINALIZE,
    PROVIDER,
    STT_BATCH_PATH,
    STT_WS_PATH,
    DoneOut,
    ErrorOut,
    FlushDoneOut,
    TranscriptOut,
    error_from_rest,
    parse_batch_transcript,
    parse_server_message,
    stt_encoding_for,
)
from .settings import CartesiaSTTSettings

__all__ = ["CartesiaSTT", "CartesiaSTTStream", "transcript_of", "wire_format_for"]

FILE_TYPES: Final = {
    "wav": ("audio.wav", "audio/wav"),
    "flac": ("audio.flac", "audio/flac"),
    "mp3": ("audio.mp3", "audio/mpeg"),
    "ogg_opus": ("audio.ogg", "audio/ogg"),
}


def wire_format_for(format: AudioFormat) -> AudioFormat:
    """The raw audio a live stream sends for audio in ``format``: itself when Cartesia names it, else 16-bit mono."""
    if not format.is_raw:
        raise AudioFormatError(
            f"a live Cartesia stream takes raw audio, not {format.encoding} (accepted: pcm, f32, mulaw, alaw at any "
            "rate; use transcribe() for files)",
            provider=PROVIDER,
        )
    if stt_encoding_for(format) is not None:
        return format
    assert format.sample_rate is not None
    return AudioFormat.pcm16(format.sample_rate)


def transcript_of(message: TranscriptOut, language: str | None) -> Transcript:
    """A Cartesia transcript (a delta with its own spaces) as a :class:`Transcript` of that delta."""
    words = tuple(Word(word.word.strip(), word.start, max(word.start, word.end)) for word in message.words)
    start = words[0].start_s if words else None
    end = words[-1].end_s if words else None
    return Transcript(message.text.strip(), message.is_final, start, end, words, language=message.language or language)


def _batch_file(audio: bytes, format: AudioFormat) -> tuple[tuple[str, bytes, str], dict[str, Any]]:
    """The multipart ``file`` for ``audio`` and the query naming raw audio."""
    if format.encoding in FILE_TYPES:
        name, content_type = FILE_TYPES[format.encoding]
        return (name, audio, content_type), {}
    if len(audio) % format.frame_width:
        raise AudioFormatError(
            f"{format} audio is truncated: {len(audio)} bytes is not a whole number of "
            f"{format.frame_width}-byte sample frames",
            provider=PROVIDER,
        )
    encoding = stt_encoding_for(format)
    if encoding is None:
        pcm = decode(audio, format)
        audio, encoding, format = pcm.data, "pcm_s16le", pcm.format
    return ("audio.raw", audio, "application/octet-stream"), {"encoding": encoding, "sample_rate": format.sample_rate}


class CartesiaSTT(CartesiaClient, STTProvider[CartesiaSTTSettings]):
    """Cartesia STT (ink-whisper): ``transcribe`` over REST, ``stream`` over WebSocket."""

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = CartesiaSTTSettings
    capabilities: ClassVar[STTCapabilities] = STTCapabilities(
        batch=True,
        streaming=True,
        interim_results=True,
        word_timestamps=True,
        flush=True,
        vad=False,
        turn_detection=True,
    )

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: CartesiaSTTSettings) -> Transcript:
        credentials = self.credentials()
        file, query = _batch_file(audio, format)
        form: dict[str, Any] = {"model": settings.model, "language": settings.language}
        if settings.word_timestamps:
            form["timestamp_granularities[]"] = "word"
        response = await send_request(
            self._client(),
            "POST",
            settings.api_url + STT_BATCH_PATH,
            provider=PROVIDER,
            mapper=error_from_rest,
            secrets=credentials.secrets,
            params=query,
            headers=credentials.headers(settings.version),
            data=form,
            files={"file": file},
            timeout=settings.timeout_s,
        )
        try:
            body = response.json()
        except json.JSONDecodeError:
            raise ProtocolError(f"the /stt answer is not JSON: {response.text[:80]!r}", provider=PROVIDER) from None
        result = transcript_of(parse_batch_transcript(body), settings.language)
        return result if settings.word_timestamps else Transcript(result.text, True, language=result.language)

    def _stream(self, format: AudioFormat, settings: CartesiaSTTSettings) -> CartesiaSTTStream:
        return CartesiaSTTStream(self, format, settings)


class CartesiaSTTStream(STTStream):
    """A live Cartesia recognition over ``/stt/websocket``.

    **Events.** ``Ready`` once the socket is open (Cartesia sends no greeting); an interim ``Transcript`` of the text
    since the last final for each ``is_final: false`` message; a final ``Transcript`` (with words) for each
    non-empty ``is_final: true``; ``Flushed`` for each ``flush_done``; ``StreamEnded`` on ``done``.

    **Flush.** ``flush()`` sends ``finalize`` and returns on the ``flush_done`` that answers it (they answer in
    order). **Turns.** With ``turn_detection``, a final Cartesia sends on its own, while no ``finalize`` is waiting
    (its silence end-pointing, ``max_silence_duration_secs``, or the drain at ``close``), is followed by
    ``TurnEnded`` (reason ``vendor``) with the turn's text.

    **Drops.** A socket that drops (cut, dead peer, closed before ``done``, a retryable ``error``) is replaced as
    :class:`~speechbridge.stt.STTStream` describes: the audio after the last final transcript or ``flush_done`` is
    sent again, then the ``finalize`` messages still unanswered (the new socket's ``flush_done`` answer them, in
    order) and ``close`` if ``end()`` was called. The turn's final text so far is kept.
    """

    reconnectable: ClassVar[bool] = True

    def __init__(self, stt: CartesiaSTT, format: AudioFormat, settings: CartesiaSTTSettings) -> None:
        super().__init__(PROVIDER, format=format, wire_format=wire_format_for(format), reliability=stt.reliability)
        self.settings = settings
        self._credentials: Credentials = stt.credentials()  # a missing key fails before connecting
        self._connect = stt._connect
        self._socket: WebSocket | None = None
        self._pending_flushes: collections.deque[int] = collections.deque()  # this socket's unanswered finalize
        self._turn_text: list[str] = []

    async def _open(self) -> None:
        self._pending_flushes.clear()
        encoding = stt_encoding_for(self.wire_format)
        assert encoding is not None and self.wire_format.sample_rate is not None
        query = {**self.settings.stream_query(), "encoding": encoding, "sample_rate": str(self.wire_format.sample_rate)}
        self._socket = await self._connect(self.settings.ws_url + STT_WS_PATH, query, self._credentials, self.settings)
        self._emit(Ready(sample_rate=self.wire_format.sample_rate))
        self._spawn(self._read(self._socket))

    async def _send_frame(self, frame: bytes) -> None:
        await self._send(frame)

    async def _send_flush(self, flush_id: int) -> None:
        self._pending_flushes.append(flush_id)
        await self._send(FINALIZE)

    async def _send_end(self) -> None:
        await self._send(CLOSE)

    async def _close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def _send(self, frame: bytes | str) -> None:
        assert self._socket is not None
        try:
            await self._socket.send(frame)
        except WebSocketClosed as exc:
            raise closed_error(exc, provider=PROVIDER, secrets=self._credentials.secrets) from None

    async def _read(self, socket: WebSocket) -> None:
        try:
            async for frame in socket:
                if not self._handle(parse_server_message(frame)):
                    return
        except WebSocketClosed as exc:
            raise closed_error(exc, provider=PROVIDER, secrets=self._credentials.secrets) from None
        raise ended_error(socket, self._credentials.secrets)

    def _handle(self, message: Any) -> bool:
        """Report one message; False once the stream is over."""
        if isinstance(message, TranscriptOut):
            self._transcript(message)
        elif isinstance(message, FlushDoneOut):
            if not self._pending_flushes:
                raise ProtocolError("'flush_done' without a 'finalize' waiting for it", provider=PROVIDER)
            self._emit(Flushed(self._pending_flushes.popleft()))
        elif isinstance(message, DoneOut):
            self._emit(StreamEnded())
            return False
        elif isinstance(message, ErrorOut):
            raise scrub_error(message.to_error(), self._credentials.secrets)
        return True

    def _transcript(self, message: TranscriptOut) -> None:
        transcript = transcript_of(message, self.settings.language)
        if not transcript.is_final:
            self._emit(transcript)
            return
        if not transcript.text:
            return
        self._emit(transcript)
        self._turn_text.append(transcript.text)
        if self.settings.turn_detection and not self._pending_flushes:
            self._emit(TurnEnded(" ".join(self._turn_text), "vendor", transcript.end_s))
            self._turn_text = []
