"""The Cartesia speech API on the wire, with no I/O: building and reading every message, both directions.

Clients use the ``client_*`` builders and :func:`parse_server_message`; the wire-compatible server uses
:func:`parse_stt_command`, :func:`parse_tts_message` and the ``server_*`` builders. Readers accept every variant seen
in real clients: ``done`` and ``{"type": "close"}`` for the STT ``close``, a voice as ``{"mode": "id", "id": ...}``,
``{"id": ...}`` or a bare string, and the nulls and extra flags the legacy 2.x SDK sends.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
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
    "API_URL",
    "API_VERSION",
    "CLOSE",
    "CONTAINERS",
    "FINALIZE",
    "MAX_SSE_EVENT_BYTES",
    "MP3_BIT_RATES",
    "PROVIDER",
    "STT_BATCH_PATH",
    "STT_ENCODINGS",
    "STT_WS_PATH",
    "TOKEN_PATH",
    "TTS_BYTES_PATH",
    "TTS_ENCODINGS",
    "TTS_SAMPLE_RATES",
    "TTS_SSE_PATH",
    "TTS_WS_PATH",
    "CancelIn",
    "ChunkOut",
    "DoneOut",
    "ErrorOut",
    "FlushDoneOut",
    "GenerationRequest",
    "OtherOut",
    "OutputFormat",
    "SSEDecoder",
    "ServerMessage",
    "TimestampsOut",
    "TranscriptOut",
    "WordOut",
    "client_cancel",
    "error_from_rest",
    "error_from_status",
    "parse_batch_transcript",
    "parse_server_message",
    "parse_stt_command",
    "parse_tts_message",
    "read_voice_id",
    "server_batch_transcript",
    "server_chunk",
    "server_done",
    "server_error",
    "server_flush_done",
    "server_timestamps",
    "server_transcript",
    "sse_event",
    "stt_encoding_for",
]

PROVIDER: Final = "cartesia"
API_URL: Final = "https://api.cartesia.ai"
API_VERSION: Final = "2026-03-01"  # errors are structured JSON from this version on
STT_BATCH_PATH: Final = "/stt"
STT_WS_PATH: Final = "/stt/websocket"
TTS_BYTES_PATH: Final = "/tts/bytes"
TTS_SSE_PATH: Final = "/tts/sse"
TTS_WS_PATH: Final = "/tts/websocket"
TOKEN_PATH: Final = "/access-token"

FINALIZE: Final = "finalize"
CLOSE: Final = "close"
LEGACY_CLOSE: Final = "done"

# Cartesia encoding names and the speechbridge encodings they are (pcm_s32le and pcm_f16le have no core codec).
STT_ENCODINGS: Final = {"pcm_s16le": "pcm_s16le", "pcm_f32le": "pcm_f32le", "pcm_mulaw": "mulaw", "pcm_alaw": "alaw"}
TTS_ENCODINGS: Final = {"pcm_s16le": "pcm_s16le", "pcm_f32le": "pcm_f32le", "pcm_mulaw": "mulaw", "pcm_alaw": "alaw"}
CONTAINERS: Final = ("raw", "wav", "mp3")
TTS_SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
MP3_BIT_RATES: Final = (32000, 64000, 96000, 128000, 192000)
MAX_SSE_EVENT_BYTES: Final = 4 * 1024 * 1024  # as the WebSocket message limit: one event carries one audio chunk
_NUMBER = (int, float)


def stt_encoding_for(format: AudioFormat) -> str | None:
    """The Cartesia ``encoding`` naming raw mono ``format``, or None when Cartesia has no name for it."""
    if not format.is_raw or format.channels != 1:
        return None
    return next((name for name, encoding in STT_ENCODINGS.items() if encoding == format.encoding), None)


# --- shared readers ----------------------------------------------------------------------------------------------


def _load(frame: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(frame, Mapping):
        return frame
    message = parse_json(frame, provider=PROVIDER)
    if not isinstance(message, Mapping):
        raise ProtocolError("message is not a JSON object", provider=PROVIDER)
    return message


def _field(message: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``message[name]`` if it is of ``kind`` (a bool is no number; numbers must be finite); ``default`` when it is
    missing or null, and without a default a missing field is an error."""
    value = message.get(name)
    if value is None:
        if default is ...:
            raise ProtocolError(f"{shown(message.get('type', 'a'))} message has no {name!r}", provider=PROVIDER)
        return default
    if isinstance(value, bool) == (kind is bool) and isinstance(value, kind):
        if kind is not _NUMBER:
            return value
        if (number := finite(value)) is not None:
            return number
    raise ProtocolError(f"message field {name!r} is malformed: {shown(value)}", provider=PROVIDER)


# --- TTS requests (client -> server) -----------------------------------------------------------------------------


@attrs.frozen
class OutputFormat:
    """``output_format``: a container (``raw``, ``wav``, ``mp3``), a PCM encoding and a rate."""

    container: str = "raw"
    encoding: str | None = "pcm_s16le"
    sample_rate: int = 24000
    bit_rate: int | None = None

    def check(self) -> OutputFormat:
        """This format, or :class:`InvalidRequest` naming the field Cartesia would refuse."""
        if self.container not in CONTAINERS:
            raise InvalidRequest(
                f"output_format.container={shown(self.container)} is not accepted (accepted: {', '.join(CONTAINERS)})",
                provider=PROVIDER,
                code=400,
            )
        if self.container != "mp3" and self.encoding not in TTS_ENCODINGS:
            raise InvalidRequest(
                f"output_format.encoding={shown(self.encoding)} is not accepted (accepted: {', '.join(TTS_ENCODINGS)})",
                provider=PROVIDER,
                code=400,
            )
        if self.sample_rate not in TTS_SAMPLE_RATES:
            raise InvalidRequest(
                f"output_format.sample_rate={shown(self.sample_rate)} is not accepted "
                f"(accepted: {', '.join(map(str, TTS_SAMPLE_RATES))})",
                provider=PROVIDER,
                code=400,
            )
        return self

    @property
    def audio_format(self) -> AudioFormat:
        """What the audio bytes hold (WAV and MP3 name their rate as the rate to encode at)."""
        if self.container == "raw":
            return AudioFormat(TTS_ENCODINGS[self.encoding or "pcm_s16le"], self.sample_rate)  # type: ignore[arg-type]
        return AudioFormat("wav" if self.container == "wav" else "mp3", self.sample_rate)

    def to_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {"container": self.container, "sample_rate": self.sample_rate}
        if self.container == "mp3":
            message["bit_rate"] = self.bit_rate or 128000
        else:
            message["encoding"] = self.encoding
        return message

    @classmethod
    def from_json(cls, value: Any) -> OutputFormat:
        if not isinstance(value, Mapping):
            raise InvalidRequest("output_format must be an object", provider=PROVIDER, code=400)
        rate, encoding, bit_rate = value.get("sample_rate"), value.get("encoding"), value.get("bit_rate")
        if encoding is not None and not isinstance(encoding, str):
            raise InvalidRequest(
                f"output_format.encoding must be a string, not {shown(encoding)}", provider=PROVIDER, code=400
            )
        return cls(
            container=str(value.get("container", "raw")),
            encoding=encoding,
            sample_rate=rate if isinstance(rate, int) and not isinstance(rate, bool) else 0,
            bit_rate=bit_rate if isinstance(bit_rate, int) and not isinstance(bit_rate, bool) else None,
        ).check()


def read_voice_id(value: Any) -> str:
    """The voice id of a ``voice`` field: ``{"mode": "id", "id": ...}``, ``{"id": ...}`` or a bare string."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        if value.get("mode", "id") != "id":
            raise InvalidRequest(
                f"voice mode {shown(value.get('mode'))} is not supported (accepted: 'id')", provider=PROVIDER, code=400
            )
        if isinstance(value.get("id"), str) and value["id"]:
            return str(value["id"])
    raise InvalidRequest("voice must name a voice id: {'mode': 'id', 'id': '...'}", provider=PROVIDER, code=400)


def _context_id(message: Mapping[str, Any]) -> str | None:
    """A client's ``context_id``: a string (a number is read as one), or None."""
    context = message.get("context_id")
    if context is None or isinstance(context, str):
        return context
    if isinstance(context, int) and not isinstance(context, bool):
        return str(context)
    raise InvalidRequest(f"context_id must be a string, not {shown(context)}", provider=PROVIDER, code=400)


@attrs.frozen
class GenerationRequest:
    """One TTS generation request (REST body, or one piece of text on a WebSocket context)."""

    transcript: str
    voice_id: str
    model_id: str = "sonic-3"
    output_format: OutputFormat = OutputFormat()
    context_id: str | None = None
    language: str | None = None
    continue_: bool = False
    flush: bool = False
    add_timestamps: bool = False
    max_buffer_delay_ms: int | None = None
    generation_config: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "model_id": self.model_id,
            "transcript": self.transcript,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": self.output_format.to_json(),
        }
        optional = {
            "context_id": self.context_id,
            "language": self.language,
            "max_buffer_delay_ms": self.max_buffer_delay_ms,
            "generation_config": dict(self.generation_config) if self.generation_config else None,
        }
        message.update({key: value for key, value in optional.items() if value is not None})
        if self.context_id is not None:
            message["continue"] = self.continue_
        if self.flush:
            message["flush"] = True
        if self.add_timestamps:
            message["add_timestamps"] = True
        return message

    @classmethod
    def from_json(cls, message: Mapping[str, Any], defaults: GenerationRequest | None = None) -> GenerationRequest:
        """Read a request; on a context that already started, fields left out are those of its first request."""
        transcript = message.get("transcript")
        if not isinstance(transcript, str):
            raise InvalidRequest("transcript must be a string", provider=PROVIDER, code=400)
        context = _context_id(message)
        delay = message.get("max_buffer_delay_ms")
        config = message.get("generation_config")
        if defaults is not None:
            voice_id = read_voice_id(message["voice"]) if message.get("voice") else defaults.voice_id
            output = message.get("output_format")
            output_format = OutputFormat.from_json(output) if output is not None else defaults.output_format
            timestamps = message.get("add_timestamps")
            add_timestamps = timestamps is True if timestamps is not None else defaults.add_timestamps
        else:
            voice_id = read_voice_id(message.get("voice"))
            output_format = OutputFormat.from_json(message.get("output_format"))
            add_timestamps = message.get("add_timestamps") is True
        return cls(
            transcript=transcript,
            voice_id=voice_id,
            model_id=str(message.get("model_id") or (defaults.model_id if defaults else "sonic-3")),
            output_format=output_format,
            context_id=context,
            language=message.get("language") if isinstance(message.get("language"), str) else None,
            continue_=message.get("continue") is True,
            flush=message.get("flush") is True,
            add_timestamps=add_timestamps,
            max_buffer_delay_ms=delay if isinstance(delay, int) and not isinstance(delay, bool) else None,
            generation_config=config if isinstance(config, Mapping) else None,
        )


@attrs.frozen
class CancelIn:
    context_id: str


def client_cancel(context_id: str) -> dict[str, Any]:
    return {"context_id": context_id, "cancel": True}


def parse_tts_message(
    frame: str | bytes, started: Mapping[str, GenerationRequest] | None = None
) -> GenerationRequest | CancelIn:
    """Read a client's TTS WebSocket message (the server side); ``started`` holds the first request of each open
    context, whose fields a later request may leave out."""
    message = _load(frame)
    context_id = _context_id(message)
    if message.get("cancel") is True:
        if context_id is None:
            raise InvalidRequest("cancel needs a context_id", provider=PROVIDER, code=400)
        return CancelIn(context_id)
    defaults = (started or {}).get(context_id) if context_id is not None else None
    request = GenerationRequest.from_json(message, defaults)
    if request.context_id is None:
        raise InvalidRequest("a WebSocket generation request needs a context_id", provider=PROVIDER, code=400)
    return request


def parse_stt_command(text: str) -> str:
    """A text frame of the STT socket as :data:`FINALIZE` or :data:`CLOSE` (``done`` and ``{"type":"close"}`` too)."""
    command = text.strip()
    if command.startswith("{"):
        message = _load(command)
        command = str(message.get("type", ""))
    if command == FINALIZE:
        return FINALIZE
    if command in (CLOSE, LEGACY_CLOSE):
        return CLOSE
    raise InvalidRequest(
        f"unknown STT command {command[:40]!r} (accepted: 'finalize', 'close', 'done')", provider=PROVIDER, code=400
    )


# --- server -> client --------------------------------------------------------------------------------------------


@attrs.frozen
class WordOut:
    word: str
    start: float
    end: float


@attrs.frozen
class TranscriptOut:
    """``transcript``: ``text`` is a delta since the last final, joined verbatim (it carries its own spaces)."""

    text: str
    is_final: bool
    words: tuple[WordOut, ...] = ()
    duration: float | None = None
    language: str | None = None
    request_id: str | None = None


@attrs.frozen
class FlushDoneOut:
    """``flush_done``: STT (a ``finalize`` is done) or TTS (``flush_id`` on ``context_id`` is done)."""

    flush_id: int | None = None
    context_id: str | None = None


@attrs.frozen
class DoneOut:
    context_id: str | None = None


@attrs.frozen
class ChunkOut:
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    context_id: str | None = None
    flush_id: int | None = None


@attrs.frozen
class TimestampsOut:
    words: tuple[WordOut, ...]
    context_id: str | None = None


@attrs.frozen
class ErrorOut:
    message: str
    status_code: int | None = None
    error_code: str | None = None
    title: str | None = None
    context_id: str | None = None

    def to_error(self) -> SpeechBridgeError:
        text = f"{self.title}: {self.message}" if self.title and self.title not in self.message else self.message
        return error_from_status(self.status_code or 500, text, self.error_code)


@attrs.frozen
class OtherOut:
    """A message type this client does not use (``phoneme_timestamps``, ``connected``): ignored."""

    type: str
    context_id: str | None = None


ServerMessage: TypeAlias = TranscriptOut | FlushDoneOut | DoneOut | ChunkOut | TimestampsOut | ErrorOut | OtherOut


def _word(word: Any, start: Any, end: Any, where: str) -> WordOut:
    start_s, end_s = finite(start), finite(end)
    if not isinstance(word, str) or start_s is None or end_s is None:
        raise ProtocolError(f"malformed {where}: {shown((word, start, end))}", provider=PROVIDER)
    return WordOut(word, start_s, end_s)


def _words(value: Any) -> tuple[WordOut, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(word, Mapping) for word in value):
        raise ProtocolError(f"malformed 'words': {shown(value)}", provider=PROVIDER)
    return tuple(_word(word.get("word"), word.get("start"), word.get("end"), "'words'") for word in value)


def _word_timestamps(value: Any) -> tuple[WordOut, ...]:
    fields = [value.get(key) for key in ("words", "start", "end")] if isinstance(value, Mapping) else []
    lists = [items for items in fields if isinstance(items, list)]
    if len(lists) != 3 or len({len(items) for items in lists}) > 1:
        raise ProtocolError(f"malformed 'word_timestamps': {shown(value)}", provider=PROVIDER)
    return tuple(_word(word, start, end, "'word_timestamps'") for word, start, end in zip(*lists, strict=True))


def parse_server_message(frame: str | bytes | Mapping[str, Any]) -> ServerMessage:
    """Read a server's message (client side); unknown types come back as :class:`OtherOut`."""
    message = _load(frame)
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message has no string 'type'", provider=PROVIDER)
    context = message.get("context_id")
    context = str(context) if context is not None else None
    if kind == "transcript":
        return TranscriptOut(
            _field(message, "text", str),
            _field(message, "is_final", bool, False) is True,
            _words(message.get("words")),
            _field(message, "duration", _NUMBER, None),
            _field(message, "language", str, None),
            _field(message, "request_id", str, None),
        )
    if kind == "flush_done":
        return FlushDoneOut(_field(message, "flush_id", int, None), context)
    if kind == "done":
        return DoneOut(context)
    if kind == "chunk":
        return ChunkOut(
            decode_base64(message.get("data"), "data", provider=PROVIDER),
            context,
            _field(message, "flush_id", int, None),
        )
    if kind == "timestamps":
        return TimestampsOut(_word_timestamps(message.get("word_timestamps")), context)
    if kind == "error":
        status = message.get("status_code", message.get("code"))
        text = message.get("message") or message.get("error") or "unknown error"
        return ErrorOut(
            str(text),
            status if isinstance(status, int) and not isinstance(status, bool) else None,
            _field(message, "error_code", str, None),
            _field(message, "title", str, None),
            context,
        )
    return OtherOut(kind, context)


def server_transcript(
    text: str,
    is_final: bool,
    words: Sequence[WordOut],
    *,
    duration: float | None,
    language: str | None,
    request_id: str,
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "transcript", "request_id": request_id, "is_final": is_final, "text": text}
    if duration is not None:
        message["duration"] = round(duration, 6)
    if language is not None:
        message["language"] = language
    message["words"] = [{"word": w.word, "start": round(w.start, 6), "end": round(w.end, 6)} for w in words]
    return message


def server_flush_done(
    *, request_id: str | None = None, context_id: str | None = None, flush_id: int | None = None
) -> dict[str, Any]:
    """STT: ``{"type":"flush_done","request_id"}``; TTS: with ``context_id``, ``flush_id`` and the status fields."""
    if context_id is None:
        return {"type": "flush_done", "request_id": request_id}
    return {
        "type": "flush_done",
        "done": False,
        "flush_done": True,
        "flush_id": flush_id,
        "status_code": 206,
        "context_id": context_id,
    }


def server_done(*, request_id: str | None = None, context_id: str | None = None) -> dict[str, Any]:
    if context_id is None:
        return {"type": "done", "request_id": request_id}
    return {"type": "done", "done": True, "status_code": 200, "context_id": context_id}


def server_chunk(data: bytes, context_id: str | None, flush_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "chunk",
        "data": base64.b64encode(data).decode("ascii"),
        "done": False,
        "status_code": 206,
        "step_time": 0.0,
    }
    if context_id is not None:
        message["context_id"] = context_id
    if flush_id is not None:
        message["flush_id"] = flush_id
    return message


def server_timestamps(words: Sequence[WordOut], context_id: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "timestamps",
        "done": False,
        "status_code": 206,
        "word_timestamps": {
            "words": [w.word for w in words],
            "start": [round(w.start, 6) for w in words],
            "end": [round(w.end, 6) for w in words],
        },
    }
    if context_id is not None:
        message["context_id"] = context_id
    return message


def server_error(
    message: str,
    status_code: int,
    *,
    title: str = "Error",
    error_code: str | None = None,
    context_id: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "error",
        "done": True,
        "status_code": status_code,
        "title": title,
        "message": message,
        "error_code": error_code,
        "request_id": request_id,
    }
    if context_id is not None:
        error["context_id"] = context_id
    return error


def server_batch_transcript(
    text: str, words: Sequence[WordOut] | None, *, duration: float | None, language: str, request_id: str
) -> dict[str, Any]:
    """The body of ``POST /stt``; ``words`` only when word timestamps were asked for."""
    body: dict[str, Any] = {
        "type": "transcript",
        "request_id": request_id,
        "text": text,
        "language": language,
        "duration": duration,
    }
    if words is not None:
        body["words"] = [{"word": w.word, "start": round(w.start, 6), "end": round(w.end, 6)} for w in words]
    return body


def parse_batch_transcript(body: Any) -> TranscriptOut:
    """Read the body of ``POST /stt``."""
    if not isinstance(body, Mapping) or not isinstance(body.get("text"), str):
        raise ProtocolError("the /stt answer is not a transcript object with a 'text'", provider=PROVIDER)
    return TranscriptOut(
        body["text"],
        True,
        _words(body.get("words")),
        _field(body, "duration", _NUMBER, None),
        _field(body, "language", str, None),
        _field(body, "request_id", str, None),
    )


# --- SSE ---------------------------------------------------------------------------------------------------------


def sse_event(message: Mapping[str, Any]) -> bytes:
    """One Server-Sent Event carrying ``message`` (its ``type`` names the event)."""
    return f"event: {message['type']}\ndata: {json.dumps(message)}\n\n".encode()


class SSEDecoder:
    """Server-Sent Events bytes in, cut anywhere, the JSON object of each complete event's ``data`` out.

    Lines end with CR LF, LF or CR; other fields (``event:``, ``id:``, comments) are skipped. An event (or a line not
    yet ended) longer than ``max_event_bytes`` is a :class:`ProtocolError`: a server cannot make it buffer without
    bound.
    """

    def __init__(self, max_event_bytes: int = MAX_SSE_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._pending = bytearray()  # the line not yet ended
        self._scanned = 0  # bytes of it already searched for an end of line
        self._data: list[bytes] = []  # the data lines of the event so far
        self._size = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._pending += data
        messages: list[dict[str, Any]] = []
        start = 0
        while (end := _LINE_END.search(self._pending, max(start, self._scanned))) is not None:
            if end.group() == b"\r" and end.end() == len(self._pending):
                break  # a CR last: the LF of a CR LF may be in the next piece
            self._line(bytes(self._pending[start : end.start()]), messages)
            start = self._scanned = end.end()
        del self._pending[:start]
        self._scanned = max(0, len(self._pending) - 1)
        if self._size + len(self._pending) > self.max_event_bytes:
            raise ProtocolError(f"an SSE event is longer than {self.max_event_bytes} bytes", provider=PROVIDER)
        return messages

    def close(self) -> list[dict[str, Any]]:
        """The last event when the body ended without a blank line."""
        messages: list[dict[str, Any]] = []
        rest = bytes(self._pending).rstrip(b"\r")
        self._pending.clear()
        if rest:
            self._line(rest, messages)
        self._line(b"", messages)
        return messages

    def _line(self, line: bytes, messages: list[dict[str, Any]]) -> None:
        if line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            self._data.append(value)
            self._size += len(value) + 1
        elif not line and self._data:
            data, self._data, self._size = b"\n".join(self._data), [], 0
            if data.strip():
                messages.append(self._event(data))

    @staticmethod
    def _event(data: bytes) -> dict[str, Any]:
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            raise ProtocolError(f"an SSE event's data is not JSON: {data[:80]!r}", provider=PROVIDER) from None
        if not isinstance(message, dict):
            raise ProtocolError("an SSE event's data is not a JSON object", provider=PROVIDER)
        return message


_LINE_END: Final = re.compile(rb"\r\n|\r|\n")


# --- errors ------------------------------------------------------------------------------------------------------


def error_from_status(status: int, message: str, error_code: str | None = None) -> SpeechBridgeError:
    """The typed error for a Cartesia status code (HTTP, or ``status_code`` of an error message)."""
    text = f"{message} ({error_code})" if error_code and error_code not in message else message
    if error_code == "voice_not_found" or (status == 404 and "voice" in message.lower()):
        return UnknownVoice(text, provider=PROVIDER, code=status)
    if status in (401, 403):
        return AuthenticationError(text, provider=PROVIDER, code=status)
    if status == 402:
        return QuotaExceeded(text, provider=PROVIDER, code=status)
    if status == 429:
        return RateLimitError(text, provider=PROVIDER, code=status)
    if status in (400, 404, 409, 413, 415, 422):
        return InvalidRequest(text, provider=PROVIDER, code=status)
    return ProviderError(text or f"HTTP {status}", provider=PROVIDER, code=status, retryable=status >= 500)


def error_from_rest(status: int, body: str) -> SpeechBridgeError:
    """The typed error for a non-2xx answer: ``{"error_code","title","message"}`` JSON or ``Title: Message`` text."""
    text = body.strip()
    try:
        detail = json.loads(text)
    except (ValueError, RecursionError):
        detail = None
    code = None
    if isinstance(detail, dict):
        message, title = str(detail.get("message") or detail.get("error") or text), detail.get("title")
        text = f"{title}: {message}" if isinstance(title, str) and title not in message else message
        code = detail.get("error_code") if isinstance(detail.get("error_code"), str) else None
    return error_from_status(status, text or f"HTTP {status}", code)
