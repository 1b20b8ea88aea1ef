"""Gradium text-to-speech: one-shot over REST, live over WebSocket, several live streams on one socket.

Audio is asked for in the format Gradium makes closest to the one requested (``pcm_<rate>``, ``ulaw_8000``,
``alaw_8000``, ``opus``) and converted by :mod:`speechbridge.audio` when needed (other rates, f32, FLAC, MP3, WAV
built from PCM so its header holds the true length).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, ClassVar, Final

import attrs

from speechbridge.audio import AudioFormat, PCMAudio, encode
from speechbridge.errors import (
    AudioFormatError,
    ProtocolError,
    ProviderError,
    SpeechBridgeError,
    TransportError,
    UnknownVoice,
)
from speechbridge.events import Flushed, Ready, StreamEnded, WordTiming
from speechbridge.transports import iter_ndjson, scrub, send_request, stream_request
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

from .account import list_voices
from .client import GradiumClient
from .connection import GradiumRequest
from .protocol import (
    LANGUAGES,
    PCM_RATES,
    PROVIDER,
    TTS_POST_PATH,
    TTS_WS_PATH,
    AudioOut,
    EndOfStreamOut,
    ErrorOut,
    Setup,
    TextOut,
    client_end_of_stream,
    client_text,
    error_from_code,
    error_from_rest,
    parse_server_message,
)
from .settings import GradiumTTSSettings

__all__ = ["GradiumTTS", "GradiumTTSStream", "output_format_for", "split_whole_words"]

NATIVE_RATE: Final = 48000
G711_FORMATS: Final = {"mulaw": "ulaw_8000", "alaw": "alaw_8000"}
_UNKNOWN_VOICE = re.compile(
    r"\bvoice\b.*\b(unknown|not found|no such|does not exist|not accepted|invalid)\b"
    r"|\b(unknown|no such|invalid)\b.*\bvoice\b",
    re.IGNORECASE | re.DOTALL,
)


def _typed(error: SpeechBridgeError, voice: str) -> SpeechBridgeError:
    """``error`` as :class:`UnknownVoice` when the server says the voice is unknown."""
    if isinstance(error, ProviderError) and not isinstance(error, UnknownVoice):
        if _UNKNOWN_VOICE.search(error.message):
            typed = UnknownVoice(f"unknown voice {voice!r}: {error.message}", provider=PROVIDER, code=error.code)
            typed.__cause__ = error
            return typed
    return error


def output_format_for(format: AudioFormat) -> tuple[str, AudioFormat]:
    """The ``output_format`` to ask Gradium for when ``format`` is wanted, and the audio it holds.

    Formats Gradium makes come as they are; for the others it makes 16-bit PCM at the wanted rate (or 48 kHz), which
    the caller converts.
    """
    if format.channels != 1:
        raise AudioFormatError(f"Gradium makes mono audio, not {format} (accepted: 1 channel)", provider=PROVIDER)
    if format.encoding == "pcm_s16le" and format.sample_rate in PCM_RATES:
        return f"pcm_{format.sample_rate}", format
    if format.encoding in G711_FORMATS and format.sample_rate == 8000:
        return G711_FORMATS[format.encoding], format
    if format.encoding == "ogg_opus" and format.sample_rate in (None, NATIVE_RATE):
        return "opus", AudioFormat("ogg_opus", NATIVE_RATE)
    rate = format.sample_rate if format.sample_rate in PCM_RATES else NATIVE_RATE
    return f"pcm_{rate}", AudioFormat.pcm16(rate)


def split_whole_words(text: str) -> tuple[str, str]:
    """``text`` cut before its last, possibly unfinished, word: ``(whole words, rest)``, edges stripped.

    Gradium joins consecutive text messages with one space, so only whole whitespace-separated words are sent.
    """
    match = re.search(r"\S*$", text)
    assert match is not None
    return text[: match.start()].strip(), match.group()


def _setup(settings: GradiumTTSSettings, output_format: str) -> Setup:
    return Setup(
        kind="tts",
        model_name=settings.model,
        output_format=output_format,
        voice_id=settings.voice,
        pronunciation_id=settings.pronunciation_id,
        json_config=settings.json_config(),
    )


class GradiumTTS(GradiumClient, TTSProvider[GradiumTTSSettings]):
    """Gradium TTS: ``synthesize`` over REST (word timings from its NDJSON answer), ``stream`` over WebSocket.

    With ``multiplex=True`` the streams of this provider share sockets (one ``client_req_id`` per Gradium request),
    up to the pool's limit per socket. Authentication as :class:`GradiumClient` says.
    """

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = GradiumTTSSettings
    api_key_env: ClassVar[str | None] = "GRADIUM_API_KEY"
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities(
        batch=True,
        streaming=True,
        word_timestamps=True,
        multiplexing=True,
        languages=LANGUAGES,
        sample_rates=PCM_RATES,
    )
    default_format: ClassVar[AudioFormat] = AudioFormat.pcm16(NATIVE_RATE)

    async def voices(self) -> list[Voice]:
        return await list_voices(self._require_api_key(), settings=self.settings, client=self._client())

    async def _synthesize(self, text: str, format: AudioFormat, settings: GradiumTTSSettings) -> Synthesis:
        output_format, native = output_format_for(format)
        url, headers, secrets = await self.credentials().authenticate(settings.api_url + TTS_POST_PATH)
        body: dict[str, Any] = {
            "text": text,
            "voice_id": settings.voice,
            "output_format": output_format,
            "model_name": settings.model,
            "only_audio": not settings.word_timestamps,
        }
        if settings.json_config():
            body["json_config"] = json.dumps(settings.json_config())
        if settings.pronunciation_id is not None:
            body["pronunciation_id"] = settings.pronunciation_id
        request: dict[str, Any] = {
            "provider": PROVIDER,
            "mapper": lambda status, text: _typed(error_from_rest(status, text), settings.voice),  # never retried
            "secrets": secrets,
            "headers": headers,
            "json": body,
            "timeout": settings.timeout_s,
        }
        try:
            if settings.word_timestamps:
                audio, words, stop_s = await self._post_ndjson(url, request)
            else:
                response = await send_request(self._client(), "POST", url, **request)
                audio, words, stop_s = response.content, (), None
        except SpeechBridgeError as error:
            raise _typed(error, settings.voice) from None
        if not audio:
            raise ProtocolError("Gradium answered with no audio", provider=PROVIDER)
        return self._encode(audio, native, format, words, stop_s)

    async def _post_ndjson(
        self, url: str, request: dict[str, Any]
    ) -> tuple[bytes, tuple[WordTiming, ...], float | None]:
        audio = bytearray()
        words: list[WordTiming] = []
        stop_s: float | None = None
        async with stream_request(self._client(), "POST", url, **request) as response:
            async for line in iter_ndjson(response, provider=PROVIDER):
                message = parse_server_message(line)
                if isinstance(message, ErrorOut):
                    raise error_from_code(message.code, scrub(message.message, request["secrets"]))
                if isinstance(message, AudioOut):
                    audio += message.audio
                    stop_s = message.stop_s if message.stop_s is not None else stop_s
                elif isinstance(message, TextOut):
                    words.append(WordTiming(message.text, message.start_s, _stop(message)))
                elif isinstance(message, EndOfStreamOut):
                    return bytes(audio), tuple(words), stop_s
        raise TransportError("Gradium's answer ended before its end_of_stream", provider=PROVIDER)

    @staticmethod
    def _encode(
        audio: bytes, native: AudioFormat, format: AudioFormat, words: tuple[WordTiming, ...], stop_s: float | None
    ) -> Synthesis:
        if not native.is_raw:
            return Synthesis(audio, native, words, stop_s)
        if len(audio) % native.frame_width:
            raise ProtocolError(f"Gradium's {native} audio ends inside a sample", provider=PROVIDER)
        duration_s = len(audio) / native.frame_width / (native.sample_rate or NATIVE_RATE)
        if format == native:
            return Synthesis(audio, native, words, duration_s)
        assert native.encoding == "pcm_s16le" and native.sample_rate is not None
        target = attrs.evolve(format, sample_rate=format.sample_rate or native.sample_rate)
        return Synthesis(encode(PCMAudio(audio, native.sample_rate), target), target, words, duration_s)

    def _stream(self, format: AudioFormat, settings: GradiumTTSSettings) -> TTSStream:
        return GradiumTTSStream(self, format, settings)


def _stop(message: TextOut) -> float:
    return message.stop_s if message.stop_s is not None else message.start_s


@attrs.define
class _Segment:
    """One Gradium request of a stream: the text between two flushes."""

    request: GradiumRequest
    reader: asyncio.Task[None] | None = None
    has_text: bool = False
    flush_ids: list[int] = attrs.Factory(list)  # flushes confirmed once this segment's audio is out
    last: bool = False  # the stream ends after this segment


class GradiumTTSStream(TTSStream):
    """A live Gradium synthesis over WebSocket.

    **Text.** Gradium joins consecutive ``text`` messages with one space, so text is held until whitespace follows
    it and only whole words are sent; a word cut across two ``send_text`` calls is never split.

    **Flush.** Gradium's TTS has no flush message and its ``<flush>`` tag is never confirmed. So ``flush()`` ends the
    current Gradium request with ``end_of_stream`` (which makes Gradium speak everything it holds now), and the
    ``Flushed`` event comes when Gradium's ``end_of_stream`` for that request arrives: by then every byte of audio and
    every word timing of the text sent so far has been emitted. Text after a flush opens a new request (multiplexed:
    a new ``client_req_id`` on the shared socket; otherwise a new socket, as LiveKit's Gradium plugin does), whose
    audio and word timings follow the earlier ones, timings shifted by the audio already emitted. Each request is
    spoken on its own, so intonation restarts after a flush, as it does after Gradium's ``<flush>`` tag. A flush with
    no new text is confirmed as soon as the audio of the earlier text is out.

    **End.** ``end()`` sends the rest of the text and ``end_of_stream``; ``StreamEnded`` follows Gradium's
    ``end_of_stream`` once all audio is out.
    """

    def __init__(self, tts: GradiumTTS, format: AudioFormat, settings: GradiumTTSSettings) -> None:
        wanted = format if format.is_raw else AudioFormat.pcm16(format.sample_rate or NATIVE_RATE)
        output_format, native = output_format_for(wanted)
        super().__init__(PROVIDER, format=format, native_format=native)
        self.settings = settings
        self.url = settings.ws_url + TTS_WS_PATH
        self._tts = tts
        self._setup = _setup(settings, output_format)
        self._held = ""  # text after the last whitespace: maybe an unfinished word
        self._segments: list[_Segment] = []
        self._open_segment: _Segment | None = None  # takes text; None after a flush until more text comes
        self._ended_segment: _Segment | None = None  # the last one sent end_of_stream
        self._native_bytes = 0
        self._starting = asyncio.Lock()  # one new request at a time, even for concurrent send_text calls

    async def _open(self) -> None:
        """Start the first request and wait for its ``ready``, so a refused voice or key fails here."""
        segment = await self._start_segment(read=False)
        try:
            ready = await segment.request.ready(self.settings.timeout_s)
        except SpeechBridgeError as error:
            raise _typed(error, self.settings.voice) from None
        self._emit(Ready(request_id=ready.request_id, sample_rate=self.native_format.sample_rate))
        segment.reader = self._spawn(self._read(segment, None))

    async def _start_segment(self, *, read: bool = True) -> _Segment:
        previous = self._segments[-1].reader if self._segments else None
        request = await self._tts.pool.start(
            self.url, self._setup, multiplex=self.settings.multiplex, timeout_s=self.settings.timeout_s
        )
        segment = _Segment(request)
        self._segments.append(segment)
        self._open_segment = segment
        if read:
            segment.reader = self._spawn(self._read(segment, previous))
        return segment

    async def _send_text(self, text: str) -> None:
        words, self._held = split_whole_words(self._held + text)
        if words:
            await self._send_words(words)

    async def _send_words(self, words: str) -> None:
        async with self._starting:
            segment = self._open_segment or await self._start_segment()
        segment.has_text = True
        await self._send(segment, client_text(words))

    async def _send(self, segment: _Segment, message: dict[str, Any]) -> None:
        try:
            await segment.request.send(message)
        except SpeechBridgeError as error:
            raise _typed(error, self.settings.voice) from None

    async def _send_held(self) -> None:
        held, self._held = self._held.strip(), ""
        if held:
            await self._send_words(held)

    async def _send_flush(self, flush_id: int) -> None:
        await self._send_held()
        segment = self._open_segment
        if segment is not None and segment.has_text:
            segment.flush_ids.append(flush_id)
            await self._end_segment(segment)
        elif self._ended_segment is None or self._ended_segment.reader is None or self._ended_segment.reader.done():
            self._emit(Flushed(flush_id))
        else:
            self._ended_segment.flush_ids.append(flush_id)

    async def _send_end(self) -> None:
        await self._send_held()
        segment = self._open_segment
        if segment is not None:
            segment.last = True
            await self._end_segment(segment)
        elif self._ended_segment is None or self._ended_segment.reader is None or self._ended_segment.reader.done():
            self._finish()
        else:
            self._ended_segment.last = True

    async def _end_segment(self, segment: _Segment) -> None:
        self._open_segment = None
        self._ended_segment = segment
        await self._send(segment, client_end_of_stream())

    def _finish(self) -> None:
        self._emit_audio_end()
        self._emit(StreamEnded())

    async def _read(self, segment: _Segment, previous: asyncio.Task[None] | None) -> None:
        """Emit a segment's audio and words, after those of the segments before it; then its flushes or the end."""
        if previous is not None:
            await asyncio.shield(previous)
        offset_s = self._native_bytes / self.native_format.frame_width / (self.native_format.sample_rate or 1)
        try:
            async for message in segment.request:
                if isinstance(message, AudioOut):
                    self._native_bytes += len(message.audio)
                    self._emit_audio(message.audio)
                elif isinstance(message, TextOut) and self.settings.word_timestamps:
                    start_s, end_s = round(offset_s + message.start_s, 6), round(offset_s + _stop(message), 6)
                    self._emit(WordTiming(message.text, start_s, end_s))
        except SpeechBridgeError as error:
            raise _typed(error, self.settings.voice) from None
        finally:
            await segment.request.aclose()
        for flush_id in segment.flush_ids:
            self._emit(Flushed(flush_id))
        if segment.last:
            self._finish()

    async def _close(self) -> None:
        for segment in self._segments:
            await segment.request.aclose()
        self._open_segment = self._ended_segment = None
