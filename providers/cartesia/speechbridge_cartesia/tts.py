"""Cartesia text-to-speech: one-shot over ``/tts/bytes`` (or ``/tts/sse`` for word timings), live over the
``/tts/websocket`` with one context per stream.

Raw audio Cartesia makes (16-bit or float PCM, μ-law, A-law at its rates) and WAV or MP3 at its rates come as they
are; for anything else Cartesia makes 16-bit PCM at the nearest rate at or above the wanted one, which
:mod:`speechbridge.audio` converts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Final

import attrs
import httpx

from speechbridge.audio import AudioFormat, PCMAudio, decode, encode
from speechbridge.errors import AudioFormatError, ProtocolError, SpeechBridgeError, TransportError
from speechbridge.events import Flushed, Ready, StreamEnded, WordTiming
from speechbridge.transports import scrub_error, send_request, stream_request
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

from .account import list_voices
from .client import CartesiaClient
from .connection import TTSConnection
from .protocol import (
    PROVIDER,
    TTS_BYTES_PATH,
    TTS_ENCODINGS,
    TTS_SAMPLE_RATES,
    TTS_SSE_PATH,
    TTS_WS_PATH,
    ChunkOut,
    DoneOut,
    ErrorOut,
    FlushDoneOut,
    GenerationRequest,
    OutputFormat,
    ServerMessage,
    SSEDecoder,
    TimestampsOut,
    client_cancel,
    error_from_rest,
    parse_server_message,
)
from .settings import CartesiaTTSSettings

__all__ = ["CartesiaTTS", "CartesiaTTSStream", "output_format_for"]

DEFAULT_RATE: Final = 24000
_CARTESIA_ENCODING: Final = {encoding: name for name, encoding in TTS_ENCODINGS.items()}


def _rate_for(sample_rate: int | None) -> int:
    """The lowest Cartesia rate at or above ``sample_rate`` (24 kHz when none is wanted)."""
    if sample_rate is None:
        return DEFAULT_RATE
    return next((rate for rate in TTS_SAMPLE_RATES if rate >= sample_rate), TTS_SAMPLE_RATES[-1])


def output_format_for(format: AudioFormat, settings: CartesiaTTSSettings, *, raw_only: bool) -> OutputFormat:
    """The ``output_format`` to ask Cartesia for when ``format`` is wanted.

    ``encoding`` / ``sample_rate`` settings choose it outright; otherwise formats Cartesia makes are asked for as
    they are (containers only when ``raw_only`` is false), and the rest as 16-bit PCM at the nearest rate.
    """
    if format.channels != 1:
        raise AudioFormatError(f"Cartesia makes mono audio, not {format} (accepted: 1 channel)", provider=PROVIDER)
    if settings.encoding is not None or settings.sample_rate is not None:
        encoding = settings.encoding or _CARTESIA_ENCODING.get(format.encoding, "pcm_s16le")
        return OutputFormat("raw", encoding, settings.sample_rate or _rate_for(format.sample_rate))
    if format.encoding in _CARTESIA_ENCODING and format.sample_rate in TTS_SAMPLE_RATES:
        return OutputFormat("raw", _CARTESIA_ENCODING[format.encoding], format.sample_rate)
    if not raw_only and format.encoding in ("wav", "mp3") and format.sample_rate in (None, *TTS_SAMPLE_RATES):
        rate = format.sample_rate or DEFAULT_RATE
        return OutputFormat(format.encoding if format.encoding == "wav" else "mp3", "pcm_s16le", rate)
    return OutputFormat("raw", "pcm_s16le", _rate_for(format.sample_rate))


async def _sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a ``/tts/sse`` body, the last one too when the body ends without a blank line."""
    decoder = SSEDecoder()
    async for data in response.aiter_bytes():
        for event in decoder.feed(data):
            yield event
    for event in decoder.close():
        yield event


def _request(text: str, settings: CartesiaTTSSettings, output: OutputFormat, **fields: Any) -> GenerationRequest:
    return GenerationRequest(
        transcript=text,
        voice_id=settings.voice,
        model_id=settings.model,
        output_format=output,
        language=settings.language,
        add_timestamps=settings.word_timestamps,
        max_buffer_delay_ms=settings.max_buffer_delay_ms,
        generation_config=settings.generation_config(),
        **fields,
    )


class CartesiaTTS(CartesiaClient, TTSProvider[CartesiaTTSSettings]):
    """Cartesia TTS (sonic): ``synthesize`` over REST, ``stream`` as a context of a TTS WebSocket.

    With ``multiplex=True`` the streams of this provider are contexts of one shared socket.
    """

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = CartesiaTTSSettings
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities(
        batch=True,
        streaming=True,
        word_timestamps=True,
        multiplexing=True,
        sample_rates=TTS_SAMPLE_RATES,
    )
    default_format: ClassVar[AudioFormat] = AudioFormat.pcm16(DEFAULT_RATE)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._shared: TTSConnection | None = None
        self._shared_lock = asyncio.Lock()

    async def voices(self) -> list[Voice]:
        return await list_voices(self.credentials(), settings=self.settings, client=self._client())

    async def _synthesize(self, text: str, format: AudioFormat, settings: CartesiaTTSSettings) -> Synthesis:
        output = output_format_for(format, settings, raw_only=settings.word_timestamps)
        request = _request(text, settings, output).to_json()
        credentials = self.credentials()
        common: dict[str, Any] = {
            "provider": PROVIDER,
            "mapper": error_from_rest,
            "secrets": credentials.secrets,
            "json": request,
            "timeout": settings.timeout_s,
        }
        headers = credentials.headers(settings.version)
        if settings.word_timestamps:
            audio, words = await self._post_sse(settings.api_url + TTS_SSE_PATH, common, headers)
        else:
            response = await send_request(
                self._client(),
                "POST",
                settings.api_url + TTS_BYTES_PATH,
                headers={**headers, "Accept": "audio/wav"},
                **common,
            )
            audio, words = response.content, ()
        if not audio:
            raise ProtocolError("Cartesia answered with no audio", provider=PROVIDER)
        return self._encode(audio, output.audio_format, format, words)

    async def _post_sse(
        self, url: str, common: dict[str, Any], headers: dict[str, str]
    ) -> tuple[bytes, tuple[WordTiming, ...]]:
        audio = bytearray()
        words: list[WordTiming] = []
        async with stream_request(
            self._client(), "POST", url, headers={**headers, "Accept": "text/event-stream"}, **common
        ) as response:
            async for event in _sse_events(response):
                message = parse_server_message(event)
                if isinstance(message, ErrorOut):
                    raise scrub_error(message.to_error(), common["secrets"])
                if isinstance(message, ChunkOut):
                    audio += message.data
                elif isinstance(message, TimestampsOut):
                    words += [WordTiming(word.word, word.start, word.end) for word in message.words]
                elif isinstance(message, DoneOut):
                    return bytes(audio), tuple(words)
        raise TransportError("Cartesia's event stream ended before its 'done'", provider=PROVIDER)

    @staticmethod
    def _encode(audio: bytes, native: AudioFormat, format: AudioFormat, words: tuple[WordTiming, ...]) -> Synthesis:
        if not native.is_raw:
            return Synthesis(audio, native, words)
        if len(audio) % native.frame_width:
            raise ProtocolError(f"Cartesia's {native} audio ends inside a sample", provider=PROVIDER)
        assert native.sample_rate is not None
        duration_s = len(audio) / native.frame_width / native.sample_rate
        if format == native:
            return Synthesis(audio, native, words, duration_s)
        target = attrs.evolve(format, sample_rate=format.sample_rate or native.sample_rate)
        pcm = audio if native.encoding == "pcm_s16le" else decode(audio, native).data
        return Synthesis(encode(PCMAudio(pcm, native.sample_rate), target), target, words, duration_s)

    def _stream(self, format: AudioFormat, settings: CartesiaTTSSettings) -> CartesiaTTSStream:
        return CartesiaTTSStream(self, format, settings)

    async def _connection(self, settings: CartesiaTTSSettings) -> tuple[TTSConnection, bool]:
        """A socket for one stream, and whether it is the provider's shared one."""
        credentials = self.credentials()
        if not settings.multiplex:
            socket = await self._connect(settings.ws_url + TTS_WS_PATH, {}, credentials, settings)
            return TTSConnection(socket, credentials.secrets), False
        async with self._shared_lock:
            if self._shared is None or not self._shared.usable:
                if self._shared is not None:
                    await self._shared.aclose()
                socket = await self._connect(settings.ws_url + TTS_WS_PATH, {}, credentials, settings)
                self._shared = TTSConnection(socket, credentials.secrets)
            return self._shared, True

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.aclose()
        await super().aclose()


class CartesiaTTSStream(TTSStream):
    """A live Cartesia synthesis: one context (a fresh ``context_id``) on its own socket or the shared one.

    **Events.** ``Ready`` (``request_id`` is the context id) once the socket is open; ``AudioChunk`` per ``chunk``;
    ``WordTiming`` per word of ``timestamps`` (with ``word_timestamps``); ``Flushed``; ``StreamEnded`` on ``done``.
    Text goes as ``continue: true`` requests, joined verbatim by Cartesia. ``flush()`` sends an empty
    ``flush: true`` request and returns on its ``flush_done``. ``end()`` sends an empty ``continue: false``.
    Leaving early cancels the context (``cancel: true``).
    """

    def __init__(self, tts: CartesiaTTS, format: AudioFormat, settings: CartesiaTTSSettings) -> None:
        self.output = output_format_for(format, settings, raw_only=True)
        super().__init__(PROVIDER, format=format, native_format=self.output.audio_format)
        self.settings = settings
        self.context_id = str(uuid.uuid4())
        self._tts = tts
        self._tts.credentials()  # a missing key fails before connecting
        self._connection: TTSConnection | None = None
        self._shared = False
        self._pending_flushes: list[int] = []
        self._done = False

    async def _open(self) -> None:
        self._connection, self._shared = await self._tts._connection(self.settings)
        self._connection.add(self.context_id, self._handle)
        self._emit(Ready(request_id=self.context_id, sample_rate=self.output.sample_rate))

    async def _send_text(self, text: str) -> None:
        await self._send(text, continue_=True)

    async def _send_flush(self, flush_id: int) -> None:
        self._pending_flushes.append(flush_id)
        await self._send("", continue_=True, flush=True)

    async def _send_end(self) -> None:
        await self._send("", continue_=False)

    async def _send(self, text: str, **fields: Any) -> None:
        assert self._connection is not None
        request = _request(text, self.settings, self.output, context_id=self.context_id, **fields)
        try:
            await self._connection.send(request.to_json())
        except SpeechBridgeError as error:
            self._fail(error)
            raise

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.remove(self.context_id)
        if not self._shared:
            await connection.aclose()
        elif not self._done and connection.usable:
            try:
                await connection.send(client_cancel(self.context_id))
            except SpeechBridgeError:
                pass

    def _handle(self, message: ServerMessage | SpeechBridgeError) -> None:
        if isinstance(message, SpeechBridgeError):
            self._fail(message)
        elif isinstance(message, ChunkOut):
            self._emit_audio(message.data)
        elif isinstance(message, TimestampsOut):
            for word in message.words:
                self._emit(WordTiming(word.word, word.start, word.end))
        elif isinstance(message, FlushDoneOut):
            if not self._pending_flushes:
                self._fail(ProtocolError("'flush_done' without a flush waiting for it", provider=PROVIDER))
                return
            self._emit(Flushed(self._pending_flushes.pop(0)))
        elif isinstance(message, DoneOut):
            self._done = True
            self._emit_audio_end()
            self._emit(StreamEnded())
        elif isinstance(message, ErrorOut):
            self._done = True
            self._fail(message.to_error())
