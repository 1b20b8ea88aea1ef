"""ElevenLabs Scribe speech-to-text: one-shot over REST (multipart), live over the realtime WebSocket.

Containers go to ``POST /v1/speech-to-text`` as they are (``file_format=other``); raw audio is converted to 16 kHz
16-bit PCM (``file_format=pcm_s16le_16``). Live audio goes as ``pcm_<rate>`` at the Scribe rates or ``ulaw_8000``;
other raw audio is converted to PCM at the nearest Scribe rate at or above its own.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

from speechbridge.audio import AudioFormat, decode, resample
from speechbridge.errors import AudioFormatError, ProtocolError, SpeechBridgeError, TransportError
from speechbridge.events import Flushed, Ready, StreamEnded, Transcript, TurnEnded, Word
from speechbridge.stt import STTCapabilities, STTProvider, STTStream
from speechbridge.transports import scrub_error, send_request
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error, connect_websocket

from .client import ElevenLabsClient
from .protocol import (
    PROVIDER,
    REALTIME_FORMATS,
    STT_PATH,
    STT_WS_PATH,
    BatchWord,
    CommittedTranscript,
    PartialTranscript,
    SessionStarted,
    STTErrorOut,
    STTServerMessage,
    client_audio_chunk,
    client_commit,
    error_from_close,
    error_from_rest,
    parse_batch_words,
    parse_stt_server_message,
)
from .settings import ElevenLabsSTTSettings

__all__ = ["ElevenLabsSTT", "ElevenLabsSTTStream", "input_format_for", "transcript_of"]

PCM_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)  # the pcm_<rate> of REALTIME_FORMATS
BATCH_RATE: Final = 16000
CONTAINER_FILES: Final = {"wav": ("audio.wav", "audio/wav"), "flac": ("audio.flac", "audio/flac"),
                          "ogg_opus": ("audio.ogg", "audio/ogg"), "mp3": ("audio.mp3", "audio/mpeg")}  # fmt: skip
END: Final = -1  # the commit sent by end()
VAD_END_QUIET_S: Final = 0.3


def input_format_for(format: AudioFormat) -> tuple[str, AudioFormat]:
    """The ``audio_format`` to declare for live audio in ``format``, and the audio to send in it."""
    for name, accepted in REALTIME_FORMATS.items():
        if accepted == format:
            return name, format
    if not format.is_raw:
        raise AudioFormatError(
            f"a live ElevenLabs stream cannot take {format} audio (accepted: raw pcm/f32/mulaw/alaw at any rate; "
            "use transcribe() for containers)",
            provider=PROVIDER,
        )
    rate = next((rate for rate in PCM_RATES if format.sample_rate is not None and rate >= format.sample_rate), 48000)
    return f"pcm_{rate}", AudioFormat.pcm16(rate)


def _batch_file(audio: bytes, format: AudioFormat) -> tuple[tuple[str, bytes, str], str]:
    """The multipart ``file`` and the ``file_format`` for ``audio``."""
    if format.encoding in CONTAINER_FILES:
        name, media_type = CONTAINER_FILES[format.encoding]
        return (name, audio, media_type), "other"
    pcm = decode(audio, format)
    if pcm.sample_rate != BATCH_RATE:
        pcm = resample(pcm, BATCH_RATE)
    return ("audio.pcm", pcm.data, "application/octet-stream"), "pcm_s16le_16"


def transcript_of(text: str, words: tuple[BatchWord, ...], language: str | None) -> Transcript:
    """A final transcript from ElevenLabs' text and words (``spacing`` and ``audio_event`` entries are not words)."""
    spoken = tuple(
        Word(word.text.strip(), word.start, max(word.start, word.end), _confidence(word.logprob))
        for word in words
        if word.type == "word" and word.text.strip()
    )
    start = spoken[0].start_s if spoken else None
    end = spoken[-1].end_s if spoken else None
    return Transcript(text.strip(), True, start, end, spoken, language=language)


def _confidence(logprob: float | None) -> float | None:
    return None if logprob is None else round(math.exp(min(0.0, logprob)), 6)


class ElevenLabsSTT(ElevenLabsClient, STTProvider[ElevenLabsSTTSettings]):
    """ElevenLabs Scribe: ``transcribe`` over REST, ``stream`` over the realtime WebSocket (one socket per stream)."""

    name: ClassVar[str] = PROVIDER
    Settings: ClassVar[type[Any]] = ElevenLabsSTTSettings
    capabilities: ClassVar[STTCapabilities] = STTCapabilities(
        batch=True,
        streaming=True,
        interim_results=True,
        word_timestamps=True,
        flush=True,
        vad=False,
        turn_detection=True,
        sample_rates=PCM_RATES,
    )

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: ElevenLabsSTTSettings) -> Transcript:
        file, file_format = _batch_file(audio, format)
        url = settings.api_url + STT_PATH
        query = settings.logging_query()
        if query:
            url += "?" + urlencode(query)
        url, headers, secrets = await self.credentials().authenticate(url)
        response = await send_request(
            self._client(),
            "POST",
            url,
            provider=PROVIDER,
            mapper=error_from_rest,
            secrets=secrets,
            headers=headers,
            data={**settings.batch_form(), "file_format": file_format},
            files=[("file", file)] + [("keyterms", (None, term)) for term in settings.keyterms],
            timeout=settings.timeout_s,
        )
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError("the transcript is not JSON", provider=PROVIDER) from None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ProtocolError(f"unexpected transcript: {str(body)[:120]}", provider=PROVIDER)
        language = body.get("language_code") if isinstance(body.get("language_code"), str) else settings.language
        return transcript_of(body["text"], parse_batch_words(body), language)

    def _stream(self, format: AudioFormat, settings: ElevenLabsSTTSettings) -> ElevenLabsSTTStream:
        return ElevenLabsSTTStream(self, format, settings)


class ElevenLabsSTTStream(STTStream):
    """A live Scribe session.

    **Events.** ``Ready`` on ``session_started``; an interim ``Transcript`` per ``partial_transcript`` (the text since
    the last commit); a final ``Transcript`` with words per committed segment; ``Flushed``; ``TurnEnded``;
    ``StreamEnded``.

    **Commits.** ``flush()`` sends a commit and is confirmed by the next committed transcript; ``end()`` commits the
    rest and the stream ends on its answer. With ``commit_strategy="vad"`` ElevenLabs also commits by itself after
    silence: such a commit ends a turn (``TurnEnded`` with the turn's text, flushed segments included), and so does
    the commit of ``end()``. Commits carry no id, so answers are matched in order; since a vendor commit may cross one
    of ours, the stream waits ``0.3`` s of quiet after the answer to ``end()`` for one more.

    **Drops.** A session that drops (cut, dead peer, a close or a retryable error before the answer to ``end()``)
    is replaced by a new one as :class:`~speechbridge.stt.STTStream` describes: the audio after the last committed
    transcript is sent again, then the commits still unanswered (matched in order to the new session's committed
    transcripts) and the commit of ``end()`` if it was asked for. A fixed single-use ``token`` cannot open a second
    session: give a callable that mints one per use, or an API key.
    """

    reconnectable: ClassVar[bool] = True

    def __init__(self, stt: ElevenLabsSTT, format: AudioFormat, settings: ElevenLabsSTTSettings) -> None:
        audio_format, wire_format = input_format_for(format)
        super().__init__(PROVIDER, format=format, wire_format=wire_format, reliability=stt.reliability)
        self.settings = settings
        self.audio_format = audio_format
        self.session_id: str | None = None
        self._credentials = stt.credentials()  # a missing key fails before connecting
        self._dead_peer_timeout_s = stt.reliability.dead_peer_timeout_s
        self._url = f"{settings.ws_url}{STT_WS_PATH}?{urlencode(settings.realtime_query(audio_format))}"
        self._websocket: WebSocket | None = None
        self._secrets: tuple[str, ...] = ()
        self._commits: collections.deque[int] = collections.deque()  # this session's unanswered commits
        self._turn_text: list[str] = []
        self._turn_end: float | None = None  # in the stream's timeline (it may come from an earlier session)
        self._vad = settings.commit_strategy == "vad"
        self._ending = False

    async def _open(self) -> None:
        self._commits.clear()
        self._ending = False
        url, headers, self._secrets = await self._credentials.authenticate(self._url)
        self._websocket = await connect_websocket(
            url,
            provider=PROVIDER,
            headers=headers,
            open_timeout=self.settings.timeout_s,
            dead_peer_timeout_s=self._dead_peer_timeout_s,
            http_error=error_from_rest,
            secrets=self._secrets,
        )
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                first = parse_stt_server_message(await self._websocket.recv())
        except TimeoutError:
            raise TransportError(
                f"no 'session_started' within {self.settings.timeout_s:g} s", provider=PROVIDER
            ) from None
        except WebSocketClosed as exc:
            raise self._closed(exc) from None
        if isinstance(first, STTErrorOut):
            raise scrub_error(first.to_error(), self._secrets)
        if not isinstance(first, SessionStarted):
            raise ProtocolError(f"expected 'session_started' first, the server sent {first!r}", provider=PROVIDER)
        self.session_id = first.session_id
        self._emit(Ready(request_id=first.session_id, sample_rate=self.wire_format.sample_rate))
        self._spawn(self._read(self._websocket))

    async def _send_frame(self, frame: bytes) -> None:
        assert self.wire_format.sample_rate is not None
        await self._send(client_audio_chunk(frame, self.wire_format.sample_rate))

    async def _send_flush(self, flush_id: int) -> None:
        await self._commit(flush_id)

    async def _send_end(self) -> None:
        await self._commit(END)

    async def _close(self) -> None:
        if self._websocket is not None:
            await self._websocket.close()

    async def _commit(self, marker: int) -> None:
        assert self.wire_format.sample_rate is not None
        self._commits.append(marker)
        await self._send(client_commit(self.wire_format.sample_rate))

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._websocket is not None
        try:
            await self._websocket.send(json.dumps(message))
        except WebSocketClosed as exc:
            raise self._error or self._closed(exc) from None

    def _closed(self, exc: WebSocketClosed) -> SpeechBridgeError:
        return closed_error(exc, provider=PROVIDER, mapper=error_from_close, secrets=self._secrets)

    async def _read(self, websocket: WebSocket) -> None:
        try:
            while True:
                if self._ending:
                    try:
                        async with asyncio.timeout(VAD_END_QUIET_S):
                            frame = await websocket.recv()
                    except TimeoutError:
                        break
                else:
                    frame = await websocket.recv()
                self._handle(parse_stt_server_message(frame))
                if self._ending and not self._vad:
                    break
        except WebSocketClosed as exc:
            if not self._ending:
                raise self._closed(exc) from None
        self._end_turn()
        self._emit(StreamEnded())

    def _handle(self, message: STTServerMessage) -> None:
        if isinstance(message, STTErrorOut):
            raise scrub_error(message.to_error(), self._secrets)
        if isinstance(message, PartialTranscript):
            if self.settings.interim_results and message.text.strip():
                self._emit(Transcript(message.text.strip(), False))
        elif isinstance(message, CommittedTranscript) and message.timestamped:
            self._committed(message)

    def _committed(self, message: CommittedTranscript) -> None:
        marker = self._commits.popleft() if self._commits else None
        final = transcript_of(message.text, message.words, message.language_code or self.settings.language)
        if final.text:
            self._emit(final)
            self._turn_text.append(final.text)
            self._turn_end = None if final.end_s is None else final.end_s + self.session_start_s
        if marker == END or self._ending:
            self._ending = True
        elif marker is not None:
            self._emit(Flushed(marker))
        elif self._vad:
            self._end_turn()

    def _end_turn(self) -> None:
        if self._vad and self._turn_text:
            end = None if self._turn_end is None else self._turn_end - self.session_start_s
            self._emit(TurnEnded(" ".join(self._turn_text), "vendor", end))  # the base shifts it back
        self._turn_text, self._turn_end = [], None
