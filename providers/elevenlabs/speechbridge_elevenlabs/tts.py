"""ElevenLabs text-to-speech: one-shot over REST (``/with-timestamps`` for word timings), live as contexts of
``multi-stream-input`` sockets.

Formats ElevenLabs makes (``pcm_<rate>`` at its rates, ``ulaw_8000``, ``alaw_8000``, and MP3 for one-shot synthesis)
are asked for as they are; for any other format ElevenLabs makes 16-bit PCM at the nearest of its rates at or above
the one wanted (24 kHz when none is named), which :mod:`speechbridge.audio` converts. Rates are always explicit:
ElevenLabs' own default is ``mp3_44100_128``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import uuid
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

from speechbridge.audio import AudioFormat, decode, duration_of, encode
from speechbridge.errors import AudioFormatError, ProtocolError, SpeechBridgeError
from speechbridge.events import Flushed, Ready, StreamEnded, WordTiming
from speechbridge.transports import send_request
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

from .client import Credentials, ElevenLabsClient
from .connection import Inbox, TTSSocket, TTSSocketPool
from .protocol import (
    PROVIDER,
    VOICES_PATH,
    Alignment,
    TTSAudioOut,
    WordJoiner,
    client_bos,
    client_close_context,
    client_flush,
    client_text,
    error_from_rest,
    parse_output_format,
    tts_path,
)
from .settings import ElevenLabsTTSSettings

__all__ = ["ElevenLabsTTS", "ElevenLabsTTSStream", "output_format_for"]

PCM_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DEFAULT_RATE: Final = 24000
MP3_FORMATS: Final = {None: "mp3_44100_128", 22050: "mp3_22050_32", 24000: "mp3_24000_48", 44100: "mp3_44100_128"}
G711_FORMATS: Final = {"mulaw": "ulaw_8000", "alaw": "alaw_8000"}
END: Final = -1  # the flush end() waits for before closing the context


def output_format_for(format: AudioFormat, *, streaming: bool) -> str:
    """The ``output_format`` to ask ElevenLabs for when ``format`` is wanted (converted when they differ)."""
    if format.channels == 1:
        if format.encoding == "pcm_s16le" and format.sample_rate in PCM_RATES:
            return f"pcm_{format.sample_rate}"
        if format.encoding in G711_FORMATS and format.sample_rate == 8000:
            return G711_FORMATS[format.encoding]
        if format.encoding == "mp3" and not streaming and format.sample_rate in MP3_FORMATS:
            return MP3_FORMATS[format.sample_rate]
    wanted = format.sample_rate or DEFAULT_RATE
    return f"pcm_{next((rate for rate in PCM_RATES if rate >= wanted), PCM_RATES[-1])}"


def _non_space(text: str) -> int:
    return sum(1 for char in text if not char.isspace())


class ElevenLabsTTS(ElevenLabsClient, TTSProvider[ElevenLabsTTSSettings]):
    """ElevenLabs TTS: ``synthesize`` over REST, ``stream`` as a context of a ``multi-stream-input`` socket (its own
    socket, or a shared one with ``multiplex=True``).

    Single-use tokens are ElevenLabs' ``tts_websocket`` kind: with a token only, streams work and ``synthesize`` and
    ``voices`` need an ``api_key``.
    """

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = ElevenLabsTTSSettings
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities(
        batch=True, streaming=True, word_timestamps=True, multiplexing=True, sample_rates=PCM_RATES
    )
    default_format: ClassVar[AudioFormat] = AudioFormat("wav")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pool: TTSSocketPool | None = None

    @property
    def pool(self) -> TTSSocketPool:
        if self._pool is None:
            self._pool = TTSSocketPool(self.credentials(), dead_peer_timeout_s=self.reliability.dead_peer_timeout_s)
        return self._pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()
        await super().aclose()

    def _key_credentials(self) -> Credentials:
        return Credentials(api_key=self._require_api_key())

    async def voices(self) -> list[Voice]:
        url, headers, secrets = await self._key_credentials().authenticate(self.settings.api_url + VOICES_PATH)
        response = await send_request(
            self._client(), "GET", url, provider=PROVIDER, mapper=error_from_rest, secrets=secrets, headers=headers
        )
        try:
            listed = response.json()["voices"]
            return [
                Voice(
                    str(entry["voice_id"]),
                    str(entry.get("name") or entry["voice_id"]),
                    (entry.get("labels") or {}).get("language"),
                    entry.get("description"),
                )
                for entry in listed
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProtocolError("the voice list is not ElevenLabs' {'voices': [...]}", provider=PROVIDER) from None

    def _output_format(self, format: AudioFormat, settings: ElevenLabsTTSSettings, *, streaming: bool) -> str:
        name = settings.output_format or output_format_for(format, streaming=streaming)
        parse_output_format(name, streaming=streaming)
        return name

    async def _synthesize(self, text: str, format: AudioFormat, settings: ElevenLabsTTSSettings) -> Synthesis:
        output_format = self._output_format(format, settings, streaming=False)
        native = parse_output_format(output_format)
        suffix = "/with-timestamps" if settings.word_timestamps else ""
        query = urlencode({"output_format": output_format, **settings.logging_query()})
        url = f"{settings.api_url}{tts_path(settings.voice, suffix)}?{query}"
        url, headers, secrets = await self._key_credentials().authenticate(url)
        response = await send_request(
            self._client(),
            "POST",
            url,
            provider=PROVIDER,
            mapper=error_from_rest,
            secrets=secrets,
            headers=headers,
            json=settings.rest_body(text),
            timeout=settings.timeout_s,
        )
        words: tuple[WordTiming, ...] = ()
        if settings.word_timestamps:
            audio, alignment = _timestamped(response.content)
            if alignment is not None:
                joiner = WordJoiner()
                words = tuple(WordTiming(*word) for word in joiner.feed(alignment) + joiner.finish())
        else:
            audio = response.content
        if not audio:
            raise ProtocolError("ElevenLabs sent no audio", provider=PROVIDER)
        pcm = decode(audio, native if native.is_raw else None)
        wanted = format if format.sample_rate or not native.sample_rate else AudioFormat(
            format.encoding, pcm.sample_rate, format.channels)  # fmt: skip
        if wanted != native:
            audio = encode(pcm, wanted)
        return Synthesis(audio, wanted, words, pcm.duration_s)

    def _stream(self, format: AudioFormat, settings: ElevenLabsTTSSettings) -> ElevenLabsTTSStream:
        return ElevenLabsTTSStream(self, format, settings)


def _timestamped(content: bytes) -> tuple[bytes, Alignment | None]:
    """The audio and alignment of a ``/with-timestamps`` answer."""
    try:
        body = json.loads(content)
        audio = base64.b64decode(body["audio_base64"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ProtocolError("the /with-timestamps answer is not JSON with 'audio_base64'", provider=PROVIDER) from None
    return audio, Alignment.from_rest(body.get("alignment"))


class ElevenLabsTTSStream(TTSStream):
    """A live synthesis: one context (``context_id``) of a ``multi-stream-input`` socket.

    **Flush.** ElevenLabs confirms no flush, so a flush is done once the alignment of every character sent before it
    has arrived: its audio has then been emitted. ``end()`` flushes the same way, then closes the context; the stream
    ends on its ``isFinal``.

    **Word timings.** Each chunk's character alignment (relative to the chunk) is placed on the stream's timeline and
    joined into words at whitespace.
    """

    def __init__(self, tts: ElevenLabsTTS, format: AudioFormat, settings: ElevenLabsTTSSettings) -> None:
        output_format = tts._output_format(format, settings, streaming=True)
        native = parse_output_format(output_format, streaming=True)
        if not native.is_raw:
            raise AudioFormatError(
                f"output_format={output_format!r} cannot be streamed here (accepted: pcm_*, ulaw_8000, alaw_8000)",
                provider=PROVIDER,
            )
        super().__init__(PROVIDER, format=format, native_format=native)
        self.settings = settings
        self.context_id = f"ctx-{uuid.uuid4().hex[:12]}"
        self.url = f"{settings.ws_url}{tts_path(settings.voice, '/multi-stream-input')}?" + urlencode(
            settings.socket_query(output_format)
        )
        self._pool = tts.pool  # resolves the credentials now: a missing key fails before connecting
        self._socket: TTSSocket | None = None
        self._inbox: Inbox | None = None
        self._joiner = WordJoiner()
        self._audio_s = 0.0
        self._chars_sent = 0
        self._flushes: collections.deque[tuple[int, int]] = collections.deque()  # (flush id, characters before it)
        self._finished = False

    async def _open(self) -> None:
        self._socket = await self._pool.socket_for(
            self.url, multiplex=self.settings.multiplex, timeout_s=self.settings.timeout_s
        )
        self._inbox = self._socket.open_context(self.context_id)
        schedule = self.settings.chunk_length_schedule
        await self._send(
            client_bos(
                self.context_id,
                voice_settings=self.settings.effective_voice_settings(),
                generation_config={"chunk_length_schedule": list(schedule)} if schedule else None,
            )
        )
        self._emit(Ready(request_id=self.context_id, sample_rate=self.native_format.sample_rate))
        self._spawn(self._read(self._inbox))

    async def _send_text(self, text: str) -> None:
        self._chars_sent += _non_space(text)
        await self._send(client_text(text, self.context_id))

    async def _send_flush(self, flush_id: int) -> None:
        await self._flush(flush_id)

    async def _send_end(self) -> None:
        await self._flush(END)

    async def _close(self) -> None:
        if self._socket is not None:
            await self._socket.release(self.context_id, finished=self._finished)

    async def _flush(self, marker: int) -> None:
        self._flushes.append((marker, self._chars_sent))
        await self._send(client_flush(self.context_id))
        await self._settle_flushes()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._socket is not None
        try:
            await self._socket.send(message, self.context_id)
        except SpeechBridgeError as error:
            self._fail(error)
            raise

    async def _read(self, inbox: Inbox) -> None:
        while True:
            item = await inbox.get()
            if isinstance(item, SpeechBridgeError):
                raise item
            if not isinstance(item, TTSAudioOut):
                continue
            offset = self._audio_s
            if item.audio:
                self._emit_audio(item.audio)
                self._audio_s += duration_of(len(item.audio), self.native_format)
            if item.alignment is not None:
                self._words(self._joiner.feed(item.alignment.shifted(offset)))
            if item.is_final:
                self._finish()
                return
            await self._settle_flushes()

    async def _settle_flushes(self) -> None:
        while self._flushes and self._joiner.characters_seen >= self._flushes[0][1]:
            marker, _ = self._flushes.popleft()
            self._words(self._joiner.finish())
            if marker == END:
                await self._send(client_close_context(self.context_id))
            else:
                self._emit(Flushed(marker))

    def _words(self, words: list[tuple[str, float, float]]) -> None:
        if self.settings.word_timestamps:
            for text, start, end in words:
                self._emit(WordTiming(text, start, end))

    def _finish(self) -> None:
        self._finished = True
        self._words(self._joiner.finish())
        while self._flushes:  # the context is over: whatever its alignment said, its audio is all here
            marker, _ = self._flushes.popleft()
            if marker != END:
                self._emit(Flushed(marker))
        self._emit_audio_end()
        self._emit(StreamEnded())
