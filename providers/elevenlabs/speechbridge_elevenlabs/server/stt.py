"""The front's Scribe endpoints: batch ``POST /v1/speech-to-text`` and the realtime socket, over any STT provider.

Realtime mapping: audio chunks go to the backend stream; its interim and final transcripts become
``partial_transcript`` (the text since the last commit); a commit is a backend ``flush()``, answered by the committed
transcript when the backend confirms. With ``commit_strategy=vad`` the front commits by itself (a backend flush) after
``vad_silence_threshold_secs`` of silence following speech, judging each backend ``VADUpdate`` as speech when its
``speech_prob`` reaches ``vad_threshold``; a backend without VAD events commits on its own ``TurnEnded`` instead.
Such a commit covers what the backend has heard when it happens: audio sent faster than real time may already run
past the pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.audio import AudioFormat, PCMAudio, decode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
    UnsupportedFeature,
)
from speechbridge.events import Flushed, StreamEnded, Transcript, TurnEnded, VADUpdate, Word
from speechbridge.stt import STTProvider, STTStream
from speechbridge.turns import SilenceTurnDetector

from ..protocol import (
    REALTIME_FORMATS,
    REALTIME_MODELS,
    parse_stt_client_message,
    server_batch_response,
    server_committed,
    server_partial,
    server_session_started,
    server_stt_error,
)

__all__ = ["error_kind", "realtime_session", "transcribe_upload"]

POLICY: Final = 1008
INTERNAL: Final = 1011
DEFAULT_SILENCE_S: Final = 1.5
DEFAULT_VAD_THRESHOLD: Final = 0.4


def error_kind(error: SpeechBridgeError) -> str:
    """The realtime ``message_type`` (and REST ``detail.status``) for a backend error."""
    if isinstance(error, AuthenticationError):
        return "auth_error"
    if isinstance(error, QuotaExceeded):
        return "quota_exceeded"
    if isinstance(error, RateLimitError):
        return "rate_limited"
    if isinstance(error, (InvalidRequest, ConfigError, AudioFormatError, UnsupportedFeature)):
        return "input_error"
    return "transcriber_error"


async def transcribe_upload(backend: STTProvider[Any], data: bytes, file_format: str) -> dict[str, Any]:
    """The batch answer for an uploaded file (``pcm_s16le_16`` raw, or any container speechbridge decodes)."""
    if file_format == "pcm_s16le_16":
        audio = decode(data, AudioFormat.pcm16(16000))
    elif file_format == "other":
        audio = decode(data)
    else:
        raise InvalidRequest(f"file_format={file_format!r} is not accepted (accepted: pcm_s16le_16, other)")
    transcript = await backend.transcribe(audio)
    return server_batch_response(
        transcript.text,
        [(word.text, word.start_s, word.end_s) for word in transcript.words],
        language_code=transcript.language or "eng",
        duration_s=audio.duration_s if isinstance(audio, PCMAudio) else 0.0,
        request_id=uuid.uuid4().hex,
    )


class _Segment:
    """What the backend heard since the last commit."""

    def __init__(self) -> None:
        self.finals: list[str] = []
        self.words: list[Word] = []

    def text(self, interim: str = "") -> str:
        return " ".join(part for part in (*self.finals, interim) if part)

    def add(self, final: Transcript) -> None:
        if final.text:
            self.finals.append(final.text)
            self.words.extend(final.words)

    def committed(self, include_timestamps: bool, language: str | None) -> list[dict[str, Any]]:
        text = self.text()
        messages = [server_committed(text)]
        if include_timestamps:
            words = [(word.text, word.start_s, word.end_s) for word in self.words]
            messages.append(server_committed(text, words, language_code=language))
        self.finals, self.words = [], []
        return messages


def _number(query: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = query.get(name)
    try:
        value = float(text) if text is not None else default
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise InvalidRequest(f"{name}={text!r} is not accepted (accepted: a number from {low} to {high})")
    return value


async def realtime_session(websocket: WebSocket, backend: STTProvider[Any], query: Mapping[str, str]) -> None:
    """Serve one accepted realtime socket until the client leaves or the backend fails."""
    audio_format = query.get("audio_format", "pcm_16000")
    model_id = query.get("model_id", REALTIME_MODELS[0])
    commit_strategy = query.get("commit_strategy", "manual")
    include_timestamps = query.get("include_timestamps", "false").lower() == "true"
    language = query.get("language_code")
    try:
        if audio_format not in REALTIME_FORMATS:
            raise InvalidRequest(
                f"audio_format={audio_format!r} is not accepted (accepted: {', '.join(REALTIME_FORMATS)})"
            )
        if commit_strategy not in ("manual", "vad"):
            raise InvalidRequest(f"commit_strategy={commit_strategy!r} is not accepted (accepted: manual, vad)")
        silence_s = _number(query, "vad_silence_threshold_secs", DEFAULT_SILENCE_S, 0.3, 3.0)
        vad_threshold = _number(query, "vad_threshold", DEFAULT_VAD_THRESHOLD, 0.1, 0.9)
        stream = backend.stream(format=REALTIME_FORMATS[audio_format])
        await stream.open()
    except SpeechBridgeError as error:
        await _refuse(websocket, error_kind(error), error.message, POLICY)
        return
    config = {"sample_rate": REALTIME_FORMATS[audio_format].sample_rate, "audio_format": audio_format,
              "language_code": language, "commit_strategy": commit_strategy, "model_id": model_id,
              "include_timestamps": include_timestamps}  # fmt: skip
    detector = None
    if commit_strategy == "vad" and backend.capabilities.vad:
        detector = SilenceTurnDetector(silence_s)
    session = _RealtimeSession(
        websocket,
        stream,
        vad=commit_strategy == "vad",
        detector=detector,
        vad_threshold=vad_threshold,
        include_timestamps=include_timestamps,
        language=language,
    )
    await websocket.send_text(json.dumps(server_session_started(uuid.uuid4().hex, config)))
    await session.run()


async def _refuse(websocket: WebSocket, kind: str, message: str, code: int) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(server_stt_error(kind, message)))
        await websocket.close(code, kind)


class _RealtimeSession:
    def __init__(
        self,
        websocket: WebSocket,
        stream: STTStream,
        *,
        vad: bool,
        detector: SilenceTurnDetector | None,
        vad_threshold: float,
        include_timestamps: bool,
        language: str | None,
    ) -> None:
        self.websocket, self.stream = websocket, stream
        self.vad, self.detector, self.vad_threshold = vad, detector, vad_threshold
        self.include_timestamps, self.language = include_timestamps, language
        self.segment = _Segment()
        self._vad_time = 0.0
        self._commits: set[asyncio.Task[Any]] = set()
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        pump = asyncio.create_task(self._pump())
        receiver = asyncio.create_task(self._receive())
        try:
            done, _ = await asyncio.wait({pump, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if isinstance(error, SpeechBridgeError):
                    await _refuse(self.websocket, error_kind(error), error.message, INTERNAL)
                elif error is not None:
                    raise error
        finally:
            tasks = (pump, receiver, *self._commits)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.stream.aclose()

    async def _receive(self) -> None:
        while True:
            try:
                frame = await self.websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            try:
                chunk = parse_stt_client_message(frame)
            except SpeechBridgeError as error:
                await _refuse(self.websocket, "invalid_request", error.message, POLICY)
                return
            if chunk.audio:
                await self.stream.send_audio(chunk.audio)
            if chunk.commit:
                await self.stream.flush()

    async def _pump(self) -> None:
        async for event in self.stream:
            if isinstance(event, Transcript) and not event.is_final:
                await self._send(server_partial(self.segment.text(event.text)))
            elif isinstance(event, Transcript):
                self.segment.add(event)
                await self._send(server_partial(self.segment.text()))
            elif isinstance(event, VADUpdate) and self.detector is not None:
                self._vad_step(event)
            elif isinstance(event, Flushed) or (
                isinstance(event, TurnEnded) and self.vad and self.detector is None and self.segment.finals
            ):
                for message in self.segment.committed(self.include_timestamps, self.language):
                    await self._send(message)
            elif isinstance(event, StreamEnded):
                return

    def _vad_step(self, update: VADUpdate) -> None:
        assert self.detector is not None
        step, self._vad_time = max(0.0, update.time_s - self._vad_time), update.time_s
        signal = self.detector.update(update.speech_prob >= self.vad_threshold, step)
        if signal is not None and signal.kind == "turn_ended":
            commit = asyncio.create_task(self.stream.flush())  # answered by the Flushed the pump sees
            self._commits.add(commit)
            commit.add_done_callback(self._commits.discard)

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))
