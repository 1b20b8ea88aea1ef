"""The ElevenLabs speech API on the wire, with no I/O: building and reading every message, both directions.

Clients use the ``client_*`` builders and the ``parse_*_server_*`` readers; the wire-compatible server uses the
``parse_*_client_*`` readers and the ``server_*`` builders. Scribe realtime STT speaks snake_case JSON with a
``message_type``; the TTS sockets speak camelCase (``isFinal``, ``contextId``, ``charStartTimesMs``) while REST
speaks snake_case (``character_start_times_seconds``). Readers accept what the official SDK sends, including the
literal ``"null"`` form fields and ``"voice_settings": null``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
    UnknownVoice,
)
from speechbridge.wire import decode_base64, finite, parse_json, shown

__all__ = [
    "API_HOSTS",
    "DEFAULT_OUTPUT_FORMAT",
    "MAX_CONTEXTS",
    "OUTPUT_FORMATS",
    "PROVIDER",
    "REALTIME_FORMATS",
    "REALTIME_MODELS",
    "STREAMING_OUTPUT_FORMATS",
    "STT_MODELS",
    "STT_PATH",
    "STT_WS_PATH",
    "TOKEN_PATH",
    "TOKEN_TYPES",
    "VOICES_PATH",
    "Alignment",
    "AudioChunkIn",
    "BatchWord",
    "CloseContextIn",
    "CloseSocketIn",
    "CommittedTranscript",
    "PartialTranscript",
    "STTErrorOut",
    "STTServerMessage",
    "SessionStarted",
    "TTSAudioOut",
    "TTSClientMessage",
    "TTSErrorOut",
    "TTSServerMessage",
    "TextIn",
    "WordJoiner",
    "client_audio_chunk",
    "client_bos",
    "client_close_context",
    "client_close_socket",
    "client_commit",
    "client_flush",
    "client_text",
    "error_from_close",
    "error_from_rest",
    "error_from_stt",
    "parse_batch_words",
    "parse_output_format",
    "parse_stt_client_message",
    "parse_stt_server_message",
    "parse_tts_client_message",
    "parse_tts_server_message",
    "server_audio",
    "server_batch_response",
    "server_committed",
    "server_is_final",
    "server_partial",
    "server_rest_error",
    "server_session_started",
    "server_stt_error",
    "server_tts_error",
    "tts_path",
]

PROVIDER: Final = "elevenlabs"
API_HOSTS: Final = {
    "default": "https://api.elevenlabs.io",
    "us": "https://api.us.elevenlabs.io",
    "eu": "https://api.eu.residency.elevenlabs.io",
    "in": "https://api.in.residency.elevenlabs.io",
    "sg": "https://api.sg.residency.elevenlabs.io",
}
STT_PATH: Final = "/v1/speech-to-text"
STT_WS_PATH: Final = "/v1/speech-to-text/realtime"
VOICES_PATH: Final = "/v1/voices"
TOKEN_PATH: Final = "/v1/single-use-token/{token_type}"
TOKEN_TYPES: Final = ("realtime_scribe", "batch_scribe", "tts_websocket")
STT_MODELS: Final = ("scribe_v1", "scribe_v2", "scribe_v3")
REALTIME_MODELS: Final = ("scribe_v2_realtime", "scribe_v3_live")
MAX_CONTEXTS: Final = 5
DEFAULT_OUTPUT_FORMAT: Final = "mp3_44100_128"

REALTIME_FORMATS: Final[Mapping[str, AudioFormat]] = {
    **{f"pcm_{rate}": AudioFormat.pcm16(rate) for rate in (8000, 16000, 22050, 24000, 44100, 48000)},
    "ulaw_8000": AudioFormat("mulaw", 8000),
}
STREAMING_OUTPUT_FORMATS: Final[Mapping[str, AudioFormat]] = {
    **{f"mp3_{rate}_{kbps}": AudioFormat("mp3", rate) for rate, kbps in
       ((22050, 32), (24000, 48), (44100, 32), (44100, 64), (44100, 96), (44100, 128), (44100, 192))},
    **{f"pcm_{rate}": AudioFormat.pcm16(rate) for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)},
    "ulaw_8000": AudioFormat("mulaw", 8000),
    "alaw_8000": AudioFormat("alaw", 8000),
    **{f"opus_48000_{kbps}": AudioFormat("ogg_opus", 48000) for kbps in (32, 64, 96, 128, 192)},
}  # fmt: skip
OUTPUT_FORMATS: Final[Mapping[str, AudioFormat]] = {
    **STREAMING_OUTPUT_FORMATS,
    **{f"wav_{rate}": AudioFormat("wav", rate) for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)},
}


def tts_path(voice_id: str, suffix: str = "") -> str:
    """``/v1/text-to-speech/{voice_id}`` plus ``suffix`` (``/stream``, ``/with-timestamps``, ``/stream-input``...)."""
    return f"/v1/text-to-speech/{voice_id}{suffix}"


def parse_output_format(name: str, *, streaming: bool = False) -> AudioFormat:
    """What an ``output_format`` string holds (``wav_*`` only on the non-streaming endpoints)."""
    table = STREAMING_OUTPUT_FORMATS if streaming else OUTPUT_FORMATS
    if name not in table:
        raise ConfigError(f"output_format={shown(name)} is not accepted", allowed=table, provider=PROVIDER)
    return table[name]


# --- shared reading ---------------------------------------------------------------------------------------------


def _load(frame: str | bytes) -> dict[str, Any]:
    message = parse_json(frame, provider=PROVIDER)
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object", provider=PROVIDER)
    return message


def _decode_base64(text: Any, name: str) -> bytes:
    if text is None or text == "":
        return b""
    return decode_base64(text, name, provider=PROVIDER)


def _encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_NUMBER = (int, float)


def _typed(message: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """``message[name]`` if it is of ``kind`` (a bool is no number; numbers are finite floats); ``default`` when it is
    missing or null."""
    value = message.get(name)
    if value is None:
        return default
    if isinstance(value, bool) == (kind is bool) and isinstance(value, kind):
        if kind is not _NUMBER:
            return value
        if (number := finite(value)) is not None:
            return number
    raise ProtocolError(f"malformed {name!r}: {shown(value)}", provider=PROVIDER)


def _times(values: Any, scale: float = 1.0) -> tuple[float, ...]:
    """A list of finite numbers, each times ``scale``."""
    numbers = tuple(finite(value) for value in values) if isinstance(values, list) else (None,)
    if None in numbers:
        raise ProtocolError(f"malformed times: {shown(values)}", provider=PROVIDER)
    return tuple(number * scale for number in numbers)  # type: ignore[operator]


# --- STT batch --------------------------------------------------------------------------------------------------


@attrs.frozen
class BatchWord:
    """One entry of a transcript's ``words``: ``type`` is ``word``, ``spacing`` or ``audio_event``."""

    text: str
    start: float
    end: float
    type: str = "word"
    logprob: float | None = None


def parse_batch_words(body: Mapping[str, Any]) -> tuple[BatchWord, ...]:
    """The ``words`` of a ``SpeechToTextChunkResponseModel`` (timings may be absent: granularity ``none``)."""
    words = body.get("words") or []
    if not isinstance(words, list):
        raise ProtocolError("'words' must be a list", provider=PROVIDER)
    parsed = []
    for entry in words:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("text"), str):
            raise ProtocolError(f"malformed word: {shown(entry)}", provider=PROVIDER)
        start = _typed(entry, "start", _NUMBER)
        end = _typed(entry, "end", _NUMBER)
        parsed.append(
            BatchWord(
                entry["text"],
                float(start or 0.0),
                float(end if end is not None else start or 0.0),
                str(entry.get("type") or "word"),
                _typed(entry, "logprob", _NUMBER),
            )
        )
    return tuple(parsed)


def server_batch_response(
    text: str, words: Sequence[tuple[str, float, float]], *, language_code: str, duration_s: float, request_id: str
) -> dict[str, Any]:
    """A ``SpeechToTextChunkResponseModel`` with ``spacing`` entries between the words."""
    entries: list[dict[str, Any]] = []
    for index, (word, start, end) in enumerate(words):
        if index:
            previous_end = words[index - 1][2]
            entries.append({"text": " ", "start": previous_end, "end": start, "type": "spacing", "logprob": 0.0})
        entries.append({"text": word, "start": start, "end": end, "type": "word", "logprob": 0.0})
    return {
        "language_code": language_code,
        "language_probability": 1.0,
        "text": text,
        "words": entries,
        "transcription_id": request_id,
        "audio_duration_secs": duration_s,
    }


# --- STT realtime: client -> server -----------------------------------------------------------------------------


@attrs.frozen
class AudioChunkIn:
    """An ``input_audio_chunk``: audio (maybe empty) and whether it commits the segment."""

    audio: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    commit: bool = False
    sample_rate: int | None = None
    previous_text: str | None = None


def client_audio_chunk(audio: bytes, sample_rate: int, *, previous_text: str | None = None) -> dict[str, Any]:
    return {
        "message_type": "input_audio_chunk",
        "audio_base_64": _encode_base64(audio),
        "commit": False,
        "sample_rate": sample_rate,
        "previous_text": previous_text,
    }


def client_commit(sample_rate: int) -> dict[str, Any]:
    """Commit the segment: the server answers with its committed transcript."""
    return {"message_type": "input_audio_chunk", "audio_base_64": "", "commit": True, "sample_rate": sample_rate}


def parse_stt_client_message(frame: str | bytes) -> AudioChunkIn:
    """Read a realtime client's message (the server side); only ``input_audio_chunk`` exists."""
    message = _load(frame)
    kind = message.get("message_type", "input_audio_chunk")
    if kind != "input_audio_chunk":
        raise ProtocolError(f"unknown message_type {shown(kind)} (accepted: input_audio_chunk)", provider=PROVIDER)
    return AudioChunkIn(
        _decode_base64(message.get("audio_base_64"), "audio_base_64"),
        _typed(message, "commit", bool, False) is True,
        _typed(message, "sample_rate", int),
        _typed(message, "previous_text", str),
    )


# --- STT realtime: server -> client -----------------------------------------------------------------------------


@attrs.frozen
class SessionStarted:
    session_id: str | None
    config: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class PartialTranscript:
    text: str


@attrs.frozen
class CommittedTranscript:
    """``committed_transcript`` (``timestamped=False``) or ``committed_transcript_with_timestamps``."""

    text: str
    timestamped: bool
    words: tuple[BatchWord, ...] = ()
    language_code: str | None = None


@attrs.frozen
class STTErrorOut:
    kind: str
    message: str

    def to_error(self) -> SpeechBridgeError:
        return error_from_stt(self.kind, self.message)


@attrs.frozen
class OtherSTTOut:
    """A message this client does not use (``warning``, entity and diarisation extras): ignored."""

    kind: str


STTServerMessage: TypeAlias = SessionStarted | PartialTranscript | CommittedTranscript | STTErrorOut | OtherSTTOut
STT_ERROR_KINDS: Final = (
    "error", "auth_error", "quota_exceeded", "commit_throttled", "transcriber_error", "unaccepted_terms",
    "rate_limited", "input_error", "invalid_request", "queue_overflow", "resource_exhausted",
    "session_time_limit_exceeded", "chunk_size_exceeded", "insufficient_audio_activity",
)  # fmt: skip


def parse_stt_server_message(frame: str | bytes) -> STTServerMessage:
    """Read a realtime server's message (client side)."""
    message = _load(frame)
    kind = message.get("message_type")
    if not isinstance(kind, str):
        raise ProtocolError("message has no string 'message_type'", provider=PROVIDER)
    if kind == "session_started":
        config = message.get("config")
        return SessionStarted(_typed(message, "session_id", str), config if isinstance(config, dict) else {})
    if kind == "partial_transcript":
        return PartialTranscript(_typed(message, "text", str, ""))
    if kind in ("committed_transcript", "committed_transcript_with_timestamps"):
        timestamped = kind.endswith("timestamps")
        words = parse_batch_words(message) if timestamped else ()
        return CommittedTranscript(
            _typed(message, "text", str, ""), timestamped, words, _typed(message, "language_code", str)
        )
    if kind in STT_ERROR_KINDS:
        return STTErrorOut(kind, str(message.get("error") or message.get("message") or kind))
    return OtherSTTOut(kind)


def server_session_started(session_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    return {"message_type": "session_started", "session_id": session_id, "config": dict(config)}


def server_partial(text: str) -> dict[str, Any]:
    return {"message_type": "partial_transcript", "text": text}


def server_committed(
    text: str, words: Sequence[tuple[str, float, float]] | None = None, *, language_code: str | None = None
) -> dict[str, Any]:
    """``committed_transcript``, or ``committed_transcript_with_timestamps`` when ``words`` are given."""
    if words is None:
        return {"message_type": "committed_transcript", "text": text}
    entries = [
        {"text": word, "start": start, "end": end, "type": "word", "speaker_id": None, "logprob": 0.0}
        for word, start, end in words
    ]
    return {
        "message_type": "committed_transcript_with_timestamps",
        "text": text,
        "language_code": language_code,
        "words": entries,
    }


def server_stt_error(kind: str, message: str) -> dict[str, Any]:
    return {"message_type": kind, "error": message}


# --- TTS sockets: client -> server ------------------------------------------------------------------------------


@attrs.frozen
class TextIn:
    """A text message: the BOS (``" "``), text, a flush, a keep-alive or (single context) the EOS ``""``."""

    text: str | None
    context_id: str | None = None
    flush: bool = False
    voice_settings: Mapping[str, Any] | None = None
    api_key: str | None = None


@attrs.frozen
class CloseContextIn:
    context_id: str


@attrs.frozen
class CloseSocketIn:
    pass


TTSClientMessage: TypeAlias = TextIn | CloseContextIn | CloseSocketIn


def _with_context(message: dict[str, Any], context_id: str | None) -> dict[str, Any]:
    return {**message, "context_id": context_id} if context_id is not None else message


def client_bos(
    context_id: str | None,
    *,
    voice_settings: Mapping[str, Any] | None = None,
    generation_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The first message of a context: one space, with the voice settings."""
    message: dict[str, Any] = {"text": " "}
    if voice_settings:
        message["voice_settings"] = dict(voice_settings)
    if generation_config:
        message["generation_config"] = dict(generation_config)
    return _with_context(message, context_id)


def client_text(text: str, context_id: str | None = None) -> dict[str, Any]:
    return _with_context({"text": text, "try_trigger_generation": True}, context_id)


def client_flush(context_id: str | None = None) -> dict[str, Any]:
    """Generate everything buffered now (ElevenLabs sends no confirmation: alignment tells when it is spoken)."""
    return _with_context({"text": "", "flush": True}, context_id)


def client_close_context(context_id: str) -> dict[str, Any]:
    return {"context_id": context_id, "close_context": True}


def client_close_socket() -> dict[str, Any]:
    return {"close_socket": True}


def parse_tts_client_message(frame: str | bytes) -> TTSClientMessage:
    """Read a TTS socket client's message (the server side), single- or multi-context."""
    message = _load(frame)
    context_id = _typed(message, "context_id", str)
    if message.get("close_socket") is True:
        return CloseSocketIn()
    if message.get("close_context") is True:
        if context_id is None:
            raise ProtocolError("'close_context' needs a 'context_id'", provider=PROVIDER)
        return CloseContextIn(context_id)
    settings = message.get("voice_settings")
    if settings is not None and not isinstance(settings, dict):
        raise ProtocolError(f"malformed 'voice_settings': {shown(settings)}", provider=PROVIDER)
    key = message.get("xi_api_key", message.get("xi-api-key"))
    flush = _typed(message, "flush", bool, False) is True
    text = _typed(message, "text", str)
    if text is None and not flush:
        raise ProtocolError("a TTS message needs 'text', 'flush', 'close_context' or 'close_socket'", provider=PROVIDER)
    return TextIn(text, context_id, flush, settings, key if isinstance(key, str) else None)


# --- TTS: alignment ---------------------------------------------------------------------------------------------


def _chars(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(char, str) for char in value):
        raise ProtocolError(f"malformed alignment characters: {shown(value)}", provider=PROVIDER)
    return tuple(value)


@attrs.frozen
class Alignment:
    """Characters and their times in seconds, from a socket chunk (ms, relative to the chunk) or REST (seconds)."""

    chars: tuple[str, ...]
    starts_s: tuple[float, ...]
    ends_s: tuple[float, ...]

    @classmethod
    def from_socket(cls, value: Any) -> Alignment | None:
        """``{"chars", "charStartTimesMs", "charDurationsMs"}`` (times relative to the chunk)."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ProtocolError(f"malformed alignment: {shown(value)}", provider=PROVIDER)
        chars = _chars(value.get("chars"))
        starts = _times(value.get("charStartTimesMs"), 0.001)
        durations = _times(value.get("charDurationsMs"), 0.001)
        if not len(chars) == len(starts) == len(durations):
            raise ProtocolError("alignment lists differ in length", provider=PROVIDER)
        ends = tuple(start + duration for start, duration in zip(starts, durations, strict=True))
        if not all(map(math.isfinite, ends)):
            raise ProtocolError("alignment times are out of range", provider=PROVIDER)
        return cls(chars, starts, ends)

    @classmethod
    def from_rest(cls, value: Any) -> Alignment | None:
        """``{"characters", "character_start_times_seconds", "character_end_times_seconds"}``."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ProtocolError(f"malformed alignment: {shown(value)}", provider=PROVIDER)
        chars = _chars(value.get("characters"))
        starts = _times(value.get("character_start_times_seconds"))
        ends = _times(value.get("character_end_times_seconds"))
        if not len(chars) == len(starts) == len(ends):
            raise ProtocolError("alignment lists differ in length", provider=PROVIDER)
        return cls(chars, starts, ends)

    @classmethod
    def of_words(cls, text: str, words: Sequence[tuple[str, float, float]], *, offset_s: float = 0.0) -> Alignment:
        """Every character of ``text``, timed by ``words`` (``text``'s whitespace-separated words, in order).

        A word's characters share its span evenly; whitespace takes no time, at the start of the next word.
        """
        chars: list[str] = []
        starts: list[float] = []
        ends: list[float] = []
        pieces = iter(words)
        position = 0
        end_of_last = 0.0
        while position < len(text):
            if text[position].isspace():
                chars.append(text[position])
                starts.append(end_of_last - offset_s)
                ends.append(end_of_last - offset_s)
                position += 1
                continue
            stop = position
            while stop < len(text) and not text[stop].isspace():
                stop += 1
            _, start, end = next(pieces, ("", end_of_last, end_of_last))
            step = (end - start) / (stop - position)
            for index in range(stop - position):
                chars.append(text[position + index])
                starts.append(start + index * step - offset_s)
                ends.append(start + (index + 1) * step - offset_s)
            position, end_of_last = stop, end
        return cls(tuple(chars), tuple(round(s, 6) for s in starts), tuple(round(e, 6) for e in ends))

    def to_socket(self) -> dict[str, Any]:
        return {
            "chars": list(self.chars),
            "charStartTimesMs": [round(s * 1000) for s in self.starts_s],
            "charDurationsMs": [round((e - s) * 1000) for s, e in zip(self.starts_s, self.ends_s, strict=True)],
        }

    def to_rest(self) -> dict[str, Any]:
        return {
            "characters": list(self.chars),
            "character_start_times_seconds": list(self.starts_s),
            "character_end_times_seconds": list(self.ends_s),
        }

    def shifted(self, offset_s: float) -> Alignment:
        return Alignment(
            self.chars, tuple(s + offset_s for s in self.starts_s), tuple(e + offset_s for e in self.ends_s)
        )


class WordJoiner:
    """Characters with times in, words out: a word ends at the whitespace after it (or at :meth:`finish`)."""

    def __init__(self) -> None:
        self._chars: list[str] = []
        self._start = 0.0
        self._end = 0.0
        self.characters_seen = 0  # non-whitespace characters aligned so far

    def feed(self, alignment: Alignment) -> list[tuple[str, float, float]]:
        """The words completed by ``alignment`` (times as given, already absolute)."""
        words = []
        for char, raw_start, raw_end in zip(alignment.chars, alignment.starts_s, alignment.ends_s, strict=True):
            start, end = max(0.0, raw_start), max(0.0, raw_end)  # whole-ms rounding may dip just below zero
            if char.isspace():
                words += self.finish()
                continue
            if not self._chars:
                self._start = start
            self._chars.append(char)
            self._end = max(end, self._start)
            self.characters_seen += len(char)
        return words

    def finish(self) -> list[tuple[str, float, float]]:
        """The word in progress, if any."""
        if not self._chars:
            return []
        word = ("".join(self._chars), self._start, self._end)
        self._chars = []
        return [word]


# --- TTS sockets: server -> client ------------------------------------------------------------------------------


@attrs.frozen
class TTSAudioOut:
    """A chunk of audio (may be empty) with its alignment, or the ``isFinal`` of a context."""

    audio: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None
    context_id: str | None = None
    is_final: bool = False


@attrs.frozen
class TTSErrorOut:
    error: str
    message: str
    code: int | None = None
    context_id: str | None = None

    def to_error(self) -> SpeechBridgeError:
        return error_from_close(self.code, self.message, self.error)


TTSServerMessage: TypeAlias = TTSAudioOut | TTSErrorOut


def parse_tts_server_message(frame: str | bytes) -> TTSServerMessage:
    """Read a TTS socket server's message (client side)."""
    message = _load(frame)
    context_id = _typed(message, "contextId", str) or _typed(message, "context_id", str)
    if "error" in message or ("message" in message and "audio" not in message):
        code = message.get("code")
        return TTSErrorOut(
            str(message.get("error") or "error"),
            str(message.get("message") or message.get("error") or "unknown error"),
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            context_id,
        )
    return TTSAudioOut(
        _decode_base64(message.get("audio"), "audio"),
        Alignment.from_socket(message.get("alignment")),
        Alignment.from_socket(message.get("normalizedAlignment")),
        context_id,
        message.get("isFinal") is True,
    )


def server_audio(audio: bytes, alignment: Alignment | None, context_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"audio": _encode_base64(audio), "isFinal": None}
    if alignment is not None:
        message["alignment"] = message["normalizedAlignment"] = alignment.to_socket()
    return {**message, "contextId": context_id} if context_id is not None else message


def server_is_final(context_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"isFinal": True}
    return {**message, "contextId": context_id} if context_id is not None else message


def server_tts_error(error: str, message: str, code: int, context_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "error": error, "code": code}
    return {**body, "contextId": context_id} if context_id is not None else body


def server_rest_error(status: str, message: str) -> dict[str, Any]:
    return {"detail": {"status": status, "message": message}}


# --- errors -----------------------------------------------------------------------------------------------------


_AUTH: Final = (
    "invalid_api_key",
    "auth_error",
    "unauthorized",
    "missing_api_key",
    "invalid_token",
    "needs_authorization",
)
_QUOTA: Final = ("quota_exceeded", "max_active_conversations", "queue_overflow", "resource_exhausted",
                 "max_character_limit_exceeded", "session_time_limit_exceeded")  # fmt: skip
_RATE: Final = ("too_many_concurrent_requests", "system_busy", "rate_limited", "commit_throttled")
_INVALID: Final = ("input_error", "invalid_request", "chunk_size_exceeded", "unaccepted_terms",
                   "insufficient_audio_activity", "invalid_output_format", "model_not_found")  # fmt: skip


def _by_status(status: str, message: str, code: int | str | None, *, retryable: bool = False) -> SpeechBridgeError:
    if status in _AUTH:
        return AuthenticationError(message, provider=PROVIDER, code=code)
    if status == "voice_not_found":
        return UnknownVoice(message, provider=PROVIDER, code=code)
    if status in _QUOTA:
        return QuotaExceeded(message, provider=PROVIDER, code=code)
    if status in _RATE:
        return RateLimitError(message, provider=PROVIDER, code=code)
    if status in _INVALID:
        return InvalidRequest(message, provider=PROVIDER, code=code)
    return ProviderError(message, provider=PROVIDER, code=code, retryable=retryable)


def error_from_stt(kind: str, message: str) -> SpeechBridgeError:
    """The typed error for a realtime STT error ``message_type``."""
    return _by_status(kind, message, kind, retryable=kind in ("transcriber_error", "error"))


def error_from_close(code: int | None, message: str, error: str | None = None) -> SpeechBridgeError:
    """The typed error for a TTS socket error frame or close; ``error`` is its kind (``max_active_conversations``)."""
    if error:
        typed = _by_status(error, message, code, retryable=code == 1011)
        if type(typed) is not ProviderError or code != 1008:
            return typed
    if code == 1008:
        return InvalidRequest(message, provider=PROVIDER, code=code)
    return ProviderError(message, provider=PROVIDER, code=code, retryable=code in (None, 1011, 1012, 1013, 1014))


def error_from_rest(status: int, body: str) -> SpeechBridgeError:
    """The typed error for a non-2xx REST answer: ``{"detail": {"status", "message"}}``, 422 details, or text."""
    text = body.strip()
    kind = ""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    if isinstance(detail, dict):
        kind = str(detail.get("status") or "")
        text = str(detail.get("message") or kind or text)
    elif isinstance(detail, list):
        text = "; ".join(
            f"{'.'.join(map(str, d['loc'] if isinstance(d.get('loc'), list) else []))}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    if kind:
        typed = _by_status(kind, text, status, retryable=status >= 500)
        if type(typed) is not ProviderError:
            return typed
    if status in (401, 403):
        return AuthenticationError(text, provider=PROVIDER, code=status)
    if status == 402:
        return QuotaExceeded(text, provider=PROVIDER, code=status)
    if status in (400, 404, 409, 413, 415, 422):
        return InvalidRequest(text or f"HTTP {status}", provider=PROVIDER, code=status)
    return ProviderError(text or f"HTTP {status}", provider=PROVIDER, code=status, retryable=status >= 500)
