"""Deepgram text-to-speech: ``POST /v1/speak`` for whole texts, the ``/v1/speak`` WebSocket for live text.

Formats Deepgram produces are asked for directly; any other is made by speechbridge.audio from linear16. On the
socket, ``send_text`` sends ``Speak`` (joined verbatim), ``flush()`` sends ``Flush`` and is confirmed by ``Flushed``,
:meth:`DeepgramTTSStream.clear` sends ``Clear`` (barge-in) and waits for ``Cleared``, and ``end()`` sends ``Close``
(the server speaks the rest first); the stream ends when the server closes the socket.
"""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any, ClassVar, Final

from speechbridge.audio import AudioFormat, PCMAudio, encode, resample
from speechbridge.errors import InvalidRequest, TransportError
from speechbridge.events import Flushed, Ready, StreamEnded
from speechbridge.streams import StreamState
from speechbridge.transports import send_request
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error, connect_websocket

from .client import DeepgramClient
from .protocol import (
    PROVIDER,
    SPEAK_PATH,
    TTS_SAMPLE_RATES,
    Cleared,
    ErrorMessage,
    client_clear,
    client_close,
    client_flush,
    client_speak,
    error_from_close,
    error_from_rest,
    parse_server_message,
    speak_format,
    speak_query,
)
from .protocol import (
    Flushed as FlushedMessage,
)
from .settings import DeepgramTTSSettings

__all__ = ["AURA_VOICES", "DeepgramTTS", "DeepgramTTSStream"]

AURA_VOICES: Final = {  # Aura-2 English voices from Deepgram's voice catalogue: name -> description
    "aura-2-thalia-en": "Thalia: clear, confident, energetic (feminine, American)",
    "aura-2-andromeda-en": "Andromeda: casual, expressive, comfortable (feminine, American)",
    "aura-2-helena-en": "Helena: caring, natural, positive (feminine, American)",
    "aura-2-apollo-en": "Apollo: confident, comfortable, casual (masculine, American)",
    "aura-2-arcas-en": "Arcas: natural, smooth, clear (masculine, American)",
    "aura-2-aries-en": "Aries: warm, energetic, caring (masculine, American)",
    "aura-2-asteria-en": "Asteria: clear, confident, knowledgeable (feminine, American)",
    "aura-2-luna-en": "Luna: friendly, natural, engaging (feminine, American)",
    "aura-2-orion-en": "Orion: approachable, comfortable, calm (masculine, American)",
    "aura-2-zeus-en": "Zeus: deep, trustworthy, smooth (masculine, American)",
}
LINEAR16_RATES: Final = TTS_SAMPLE_RATES["linear16"]


def _nearest_linear16_rate(sample_rate: int | None) -> int:
    """The rate to ask for when converting: the wanted one when Deepgram makes it, else the next above it."""
    if sample_rate is None:
        return 24000
    return next((rate for rate in LINEAR16_RATES if rate >= sample_rate), LINEAR16_RATES[-1])


class DeepgramTTS(DeepgramClient, TTSProvider[DeepgramTTSSettings]):
    """Deepgram Aura speech. ``DeepgramTTS(api_key=..., voice="aura-2-thalia-en")``."""

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = DeepgramTTSSettings
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities(languages=("en",), sample_rates=LINEAR16_RATES)
    default_format: ClassVar[AudioFormat] = AudioFormat.pcm16(24000)

    async def voices(self) -> list[Voice]:
        """The Aura-2 English voices (Deepgram has no voice-listing endpoint; any ``aura-*`` name is accepted)."""
        return [Voice(voice_id, text.split(":")[0], "en", text) for voice_id, text in AURA_VOICES.items()]

    async def _synthesize(self, text: str, format: AudioFormat, settings: DeepgramTTSSettings) -> Synthesis:
        query = speak_query(format, websocket=False)
        if query is not None:
            audio = await self._speak(text, settings, query)
            produced = speak_format(dict(query), websocket=False)
            return Synthesis(
                audio, produced, duration_s=len(audio) / produced.bytes_for(1.0) if produced.is_raw else None
            )
        rate = _nearest_linear16_rate(format.sample_rate)
        audio = await self._speak(
            text, settings, [("encoding", "linear16"), ("sample_rate", str(rate)), ("container", "none")]
        )
        pcm = PCMAudio(audio[: len(audio) - len(audio) % 2], rate)
        if format.sample_rate and format.sample_rate != rate:
            pcm = resample(pcm, format.sample_rate)
        produced = AudioFormat(format.encoding, format.sample_rate or rate, format.channels)
        return Synthesis(encode(pcm, produced), produced, duration_s=pcm.duration_s)

    async def _speak(self, text: str, settings: DeepgramTTSSettings, format_query: list[tuple[str, str]]) -> bytes:
        url = self.url(settings.api_url, SPEAK_PATH, settings.query() + format_query)
        response = await send_request(
            self._client(),
            "POST",
            url,
            provider=self.name,
            mapper=error_from_rest,
            secrets=self.secrets(),
            json={"text": text},
            headers=self.auth_headers(),
        )
        return response.content

    def _stream(self, format: AudioFormat, settings: DeepgramTTSSettings) -> DeepgramTTSStream:
        return DeepgramTTSStream(self, format, settings)


def _native_format(format: AudioFormat) -> AudioFormat:
    """What the socket is asked to produce for a stream in ``format``."""
    if format.is_raw and speak_query(format, websocket=True) is not None:
        return format
    return AudioFormat.pcm16(_nearest_linear16_rate(format.sample_rate))


class DeepgramTTSStream(TTSStream):
    """One ``/v1/speak`` WebSocket."""

    def __init__(self, tts: DeepgramTTS, format: AudioFormat, settings: DeepgramTTSSettings) -> None:
        super().__init__(tts.name, format=format, native_format=_native_format(format))
        self._tts = tts
        self._settings = settings
        self._ws: WebSocket | None = None
        self._pending_flushes: collections.deque[int] = collections.deque()
        self._clears: collections.deque[asyncio.Future[None]] = collections.deque()

    async def clear(self) -> None:
        """Drop the text and audio not yet delivered (barge-in); returns once the server confirms."""
        self._ensure_open()
        cleared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._clears.append(cleared)
        await self._send(client_clear())
        await cleared

    async def _open(self) -> None:
        query = self._settings.query() + (speak_query(self.native_format, websocket=True) or [])
        self._ws = await connect_websocket(
            self._tts.url(self._settings.ws_url, SPEAK_PATH, query),
            provider=self.provider,
            headers=self._tts.auth_headers(),
            open_timeout=self._settings.timeout_s,
            dead_peer_timeout_s=self._tts.reliability.dead_peer_timeout_s,
            http_error=error_from_rest,
            secrets=self._tts.secrets(),
        )
        request_id = self._ws.response_headers.get("dg-request-id")
        self._emit(Ready(request_id=request_id, sample_rate=self.native_format.sample_rate))
        self._spawn(self._read(self._ws))

    async def _send_text(self, text: str) -> None:
        await self._send(client_speak(text))

    async def _send_flush(self, flush_id: int) -> None:
        self._pending_flushes.append(flush_id)
        await self._send(client_flush())

    async def _send_end(self) -> None:
        await self._send(client_close())

    async def _close(self) -> None:
        for cleared in self._clears:
            cleared.cancel()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        try:
            await self._ws.send(json.dumps(message))
        except WebSocketClosed as exc:
            error = closed_error(exc, provider=self.provider, mapper=error_from_close, secrets=self._tts.secrets())
            self._fail(error)
            raise error from None

    async def _read(self, ws: WebSocket) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    self._emit_audio(frame)
                    continue
                message = parse_server_message(frame)
                if isinstance(message, FlushedMessage) and self._pending_flushes:
                    self._emit(Flushed(self._pending_flushes.popleft()))
                elif isinstance(message, Cleared) and self._clears:
                    self._clears.popleft().set_result(None)
                elif isinstance(message, ErrorMessage):
                    raise InvalidRequest(message.description, provider=self.provider, code=message.variant)
        except WebSocketClosed as exc:
            raise closed_error(
                exc, provider=self.provider, mapper=error_from_close, secrets=self._tts.secrets()
            ) from None
        if self.state is StreamState.OPEN:
            raise TransportError("the server closed the stream before Close was sent", provider=self.provider)
        self._emit_audio_end()
        self._emit(StreamEnded())
