"""The Deepgram speech API on the wire, with no I/O: every message and body, both directions.

Clients use the ``client_*`` builders, :func:`parse_server_message` and :func:`parse_listen_response`; the
wire-compatible front uses :func:`parse_client_message` and the ``server_*`` builders. Audio travels as raw binary
frames, so only control and result messages are JSON. Error tables turn REST statuses and close codes into typed
errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
)
from speechbridge.events import Word
from speechbridge.wire import finite, shown

__all__ = [
    "API_URL",
    "CLOSE_DATA",
    "CLOSE_NET",
    "GRANT_PATH",
    "LISTEN_PATH",
    "PROVIDER",
    "SPEAK_PATH",
    "STT_ENCODINGS",
    "TTS_REST_ENCODINGS",
    "TTS_SAMPLE_RATES",
    "TTS_WS_ENCODINGS",
    "Clear",
    "Cleared",
    "ClientMessage",
    "Close",
    "CloseStream",
    "Configure",
    "ErrorMessage",
    "Finalize",
    "Flush",
    "Flushed",
    "KeepAlive",
    "Metadata",
    "Other",
    "Results",
    "ServerMessage",
    "Speak",
    "SpeakMetadata",
    "SpeechStartedMessage",
    "UtteranceEnd",
    "Warning",
    "client_clear",
    "client_close",
    "client_close_stream",
    "client_finalize",
    "client_flush",
    "client_keep_alive",
    "client_speak",
    "error_from_close",
    "error_from_rest",
    "listen_response",
    "parse_client_message",
    "parse_listen_response",
    "parse_server_message",
    "query_value",
    "rest_error_body",
    "server_cleared",
    "server_error",
    "server_flushed",
    "server_metadata",
    "server_results",
    "server_speak_metadata",
    "server_speech_started",
    "server_utterance_end",
    "speak_format",
    "speak_query",
    "stt_wire_format",
]

PROVIDER: Final = "deepgram"
API_URL: Final = "https://api.deepgram.com"
LISTEN_PATH: Final = "/v1/listen"
SPEAK_PATH: Final = "/v1/speak"
GRANT_PATH: Final = "/v1/auth/grant"

CLOSE_DATA: Final = (1008, "DATA-0000")  # the payload could not be decoded as audio, or a setting was refused
CLOSE_NET: Final = (1011, "NET-0000")  # the server failed internally

# Deepgram encodings speechbridge's audio core reads and writes, and the format each names.
STT_ENCODINGS: Final = {"linear16": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}
TTS_WS_ENCODINGS: Final = {"linear16": "pcm_s16le", "mulaw": "mulaw", "alaw": "alaw"}
TTS_REST_ENCODINGS: Final = {**TTS_WS_ENCODINGS, "mp3": "mp3", "opus": "ogg_opus", "flac": "flac"}
TTS_SAMPLE_RATES: Final = {
    "linear16": (8000, 16000, 24000, 32000, 48000),
    "mulaw": (8000, 16000),
    "alaw": (8000, 16000),
}


def query_value(value: Any) -> str:
    """A query-string value as Deepgram writes it: booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- client -> server -------------------------------------------------------------------------------------------


@attrs.frozen
class KeepAlive:
    pass


@attrs.frozen
class Finalize:
    channel: int | None = None


@attrs.frozen
class CloseStream:
    pass


@attrs.frozen
class Configure:
    body: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Speak:
    text: str


@attrs.frozen
class Flush:
    pass


@attrs.frozen
class Clear:
    pass


@attrs.frozen
class Close:
    pass


ClientMessage: TypeAlias = KeepAlive | Finalize | CloseStream | Configure | Speak | Flush | Clear | Close


def client_keep_alive() -> dict[str, Any]:
    return {"type": "KeepAlive"}


def client_finalize() -> dict[str, Any]:
    return {"type": "Finalize"}


def client_close_stream() -> dict[str, Any]:
    return {"type": "CloseStream"}


def client_speak(text: str) -> dict[str, Any]:
    return {"type": "Speak", "text": text}


def client_flush() -> dict[str, Any]:
    return {"type": "Flush"}


def client_clear() -> dict[str, Any]:
    return {"type": "Clear"}


def client_close() -> dict[str, Any]:
    return {"type": "Close"}


def _load(text: str | bytes, who: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{who} sent a text frame that is not JSON: {shown(text)}", provider=PROVIDER) from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"{who} sent a message without a 'type': {shown(text)}", provider=PROVIDER)
    return message


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_client_message(text: str | bytes) -> ClientMessage:
    """A client's text frame on ``/v1/listen`` or ``/v1/speak``; unknown types raise :class:`ProtocolError`."""
    message = _load(text, "the client")
    kind = message["type"]
    if kind == "Speak":
        if not isinstance(message.get("text"), str):
            raise ProtocolError("Speak needs a string 'text'", provider=PROVIDER)
        return Speak(message["text"])
    if kind == "Finalize":
        return Finalize(_integer(message.get("channel")))
    if kind == "Configure":
        return Configure({key: value for key, value in message.items() if key != "type"})
    simple: dict[str, ClientMessage] = {
        "KeepAlive": KeepAlive(),
        "CloseStream": CloseStream(),
        "Flush": Flush(),
        "Clear": Clear(),
        "Close": Close(),
    }
    if kind not in simple:
        raise ProtocolError(f"unknown message type {shown(kind)}", provider=PROVIDER)
    return simple[kind]


# --- server -> client -------------------------------------------------------------------------------------------


@attrs.frozen
class Results:
    """One hypothesis for ``start``..``start + duration`` s; interim unless ``is_final``."""

    transcript: str
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False
    start: float = 0.0
    duration: float = 0.0
    words: tuple[Word, ...] = ()
    confidence: float | None = None


@attrs.frozen
class UtteranceEnd:
    last_word_end: float


@attrs.frozen
class SpeechStartedMessage:
    timestamp: float


@attrs.frozen
class Metadata:
    request_id: str | None = None
    duration: float | None = None


@attrs.frozen
class ErrorMessage:
    description: str
    variant: str | None = None


@attrs.frozen
class SpeakMetadata:
    request_id: str | None = None
    model_name: str | None = None


@attrs.frozen
class Flushed:
    sequence_id: int


@attrs.frozen
class Cleared:
    sequence_id: int


@attrs.frozen
class Warning:
    description: str
    code: str | None = None


@attrs.frozen
class Other:
    """A message type this module does not model (clients skip it, as the SDK does)."""

    type: str
    body: Mapping[str, Any] = attrs.field(factory=dict)


ServerMessage: TypeAlias = (
    Results
    | UtteranceEnd
    | SpeechStartedMessage
    | Metadata
    | ErrorMessage
    | SpeakMetadata
    | Flushed
    | Cleared
    | Warning
    | Other
)


def _number(message: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = message.get(key, default)
    number = finite(value)
    if number is None:
        what = shown(message.get("type", "message"))
        raise ProtocolError(f"{what} needs a finite number {key!r}, not {shown(value)}", provider=PROVIDER)
    return number


def _words(raw: Any) -> tuple[Word, ...]:
    if not isinstance(raw, list):
        return ()
    words = []
    for item in raw:
        if not isinstance(item, dict):
            raise ProtocolError(f"a word is not an object: {shown(item)}", provider=PROVIDER)
        text = item.get("punctuated_word") or item.get("word")
        if not isinstance(text, str):
            raise ProtocolError(f"a word has no text: {shown(item)}", provider=PROVIDER)
        words.append(Word(text, _number(item, "start"), _number(item, "end"), finite(item.get("confidence"))))
    return tuple(words)


def _best_alternative(channel: Any) -> Mapping[str, Any]:
    alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
    if not isinstance(alternatives, list) or not alternatives or not isinstance(alternatives[0], dict):
        raise ProtocolError("a result has no 'alternatives'", provider=PROVIDER)
    alternative: Mapping[str, Any] = alternatives[0]
    if not isinstance(alternative.get("transcript", ""), str):
        raise ProtocolError("an alternative's 'transcript' is not a string", provider=PROVIDER)
    return alternative


def parse_server_message(text: str | bytes) -> ServerMessage:
    """A server's text frame on ``/v1/listen`` or ``/v1/speak``."""
    message = _load(text, "the server")
    kind = message["type"]
    if kind == "Results":
        alternative = _best_alternative(message.get("channel"))
        return Results(
            transcript=alternative.get("transcript", ""),
            is_final=bool(message.get("is_final", False)),
            speech_final=bool(message.get("speech_final", False)),
            from_finalize=bool(message.get("from_finalize", False)),
            start=_number(message, "start", 0.0),
            duration=_number(message, "duration", 0.0),
            words=_words(alternative.get("words")),
            confidence=finite(alternative.get("confidence")),
        )
    if kind == "UtteranceEnd":
        return UtteranceEnd(_number(message, "last_word_end", 0.0))
    if kind == "SpeechStarted":
        return SpeechStartedMessage(_number(message, "timestamp", 0.0))
    if kind == "Metadata" and "model_name" in message:
        return SpeakMetadata(_text(message.get("request_id")), _text(message.get("model_name")))
    if kind == "Metadata":
        return Metadata(_text(message.get("request_id")), finite(message.get("duration")))
    if kind == "Error":
        description = str(message.get("description") or message.get("message") or "error")
        return ErrorMessage(description, _text(message.get("variant")))
    if kind in ("Flushed", "Cleared"):
        sequence_id = _integer(message.get("sequence_id", 0))
        if sequence_id is None:
            raise ProtocolError(f"{kind} needs an integer 'sequence_id'", provider=PROVIDER)
        return Flushed(sequence_id) if kind == "Flushed" else Cleared(sequence_id)
    if kind == "Warning":
        return Warning(str(message.get("description", "")), _text(message.get("code")))
    return Other(kind, message)


def _word_json(word: Word) -> dict[str, Any]:
    return {
        "word": word.text.lower().strip(".,!?;:"),
        "start": word.start_s,
        "end": word.end_s,
        "confidence": 1.0 if word.confidence is None else word.confidence,
        "punctuated_word": word.text,
    }


def _alternative(transcript: str, words: Sequence[Word], confidence: float | None) -> dict[str, Any]:
    return {
        "transcript": transcript,
        "confidence": 1.0 if confidence is None else confidence,
        "words": [_word_json(word) for word in words],
    }


def server_results(results: Results, *, request_id: str, model: str) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(results.duration, 3),
        "start": round(results.start, 3),
        "is_final": results.is_final,
        "speech_final": results.speech_final,
        "from_finalize": results.from_finalize,
        "channel": {"alternatives": [_alternative(results.transcript, results.words, results.confidence)]},
        "metadata": {
            "request_id": request_id,
            "model_info": {"name": model, "version": "speechbridge", "arch": model},
            "model_uuid": request_id,
        },
    }


def server_utterance_end(last_word_end: float) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(last_word_end, 3)}


def server_speech_started(timestamp: float) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(timestamp, 3)}


def _metadata_body(request_id: str, duration: float, model: str, created: str) -> dict[str, Any]:
    return {
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": "",
        "created": created,
        "duration": round(duration, 3),
        "channels": 1,
        "models": [request_id],
        "model_info": {request_id: {"name": model, "version": "speechbridge", "arch": model}},
    }


def server_metadata(request_id: str, duration: float, model: str, created: str) -> dict[str, Any]:
    return {"type": "Metadata", **_metadata_body(request_id, duration, model, created)}


def server_error(description: str, message: str = "", variant: str = "SchemaError") -> dict[str, Any]:
    """An in-band error; ``SchemaError`` says a text frame (echoed in ``message``) could not be understood."""
    return {"type": "Error", "variant": variant, "description": description, "message": message}


def server_speak_metadata(request_id: str, model: str) -> dict[str, Any]:
    return {
        "type": "Metadata",
        "request_id": request_id,
        "model_name": model,
        "model_version": "speechbridge",
        "model_uuid": request_id,
        "additional_model_uuids": [],
    }


def server_flushed(sequence_id: int) -> dict[str, Any]:
    return {"type": "Flushed", "sequence_id": sequence_id}


def server_cleared(sequence_id: int) -> dict[str, Any]:
    return {"type": "Cleared", "sequence_id": sequence_id}


# --- REST STT ---------------------------------------------------------------------------------------------------


def listen_response(
    transcript: str,
    words: Sequence[Word],
    *,
    request_id: str,
    duration: float,
    model: str,
    created: str,
    language: str | None = None,
) -> dict[str, Any]:
    """The body of a ``POST /v1/listen`` answer."""
    channel: dict[str, Any] = {"alternatives": [_alternative(transcript, words, None)]}
    if language:
        channel["detected_language"] = language
    return {"metadata": _metadata_body(request_id, duration, model, created), "results": {"channels": [channel]}}


def parse_listen_response(body: Any) -> tuple[str, tuple[Word, ...], float | None, str | None]:
    """Transcript, words, confidence and detected language of the first channel of a ``/v1/listen`` answer."""
    results = body.get("results") if isinstance(body, dict) else None
    channels = results.get("channels") if isinstance(results, dict) else None
    if not isinstance(channels, list) or not channels:
        raise ProtocolError("the /v1/listen answer has no results.channels", provider=PROVIDER)
    alternative = _best_alternative(channels[0])
    return (
        alternative.get("transcript", ""),
        _words(alternative.get("words")),
        finite(alternative.get("confidence")),
        _text(channels[0].get("detected_language")),
    )


# --- errors -----------------------------------------------------------------------------------------------------


def rest_error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    """Deepgram's REST error body."""
    names = {
        400: "Bad Request",
        401: "INVALID_AUTH",
        402: "ASR_PAYMENT_REQUIRED",
        403: "Forbidden",
        404: "Not Found",
        429: "TOO_MANY_REQUESTS",
    }
    return {"err_code": names.get(status, "INTERNAL_SERVER_ERROR"), "err_msg": message, "request_id": request_id}


def error_from_rest(status: int, body: str) -> SpeechBridgeError:
    """The typed error for a failed REST call (``err_msg`` or ``message`` of the JSON body when there is one)."""
    message = body
    code: int | str = status
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        message = str(parsed.get("err_msg") or parsed.get("message") or parsed.get("details") or body)
        code = parsed.get("err_code") or parsed.get("category") or status
    message = message or f"HTTP {status}"
    if status in (401, 403):
        return AuthenticationError(message, provider=PROVIDER, code=code)
    if status == 402:
        return QuotaExceeded(message, provider=PROVIDER, code=code)
    if status == 429:
        return RateLimitError(message, provider=PROVIDER, code=code)
    if status == 400 and "failed to process audio" in message:
        return AudioFormatError(message, provider=PROVIDER)
    if status in (400, 404, 413, 422):
        return InvalidRequest(message, provider=PROVIDER, code=code)
    return ProviderError(message, provider=PROVIDER, code=code, retryable=status >= 500 or status == 408)


def error_from_close(code: int | None, reason: str) -> SpeechBridgeError:
    """The typed error for a WebSocket closed with ``code`` and a reason such as ``DATA-0000 ...``."""
    if code in (1008, 1002) and "DATA-0000" in reason:
        return AudioFormatError(f"the server could not decode the audio: {reason}", provider=PROVIDER)
    if code in (1008, 1002, 1003, 1007):
        return InvalidRequest(reason, provider=PROVIDER, code=code)
    return ProviderError(reason, provider=PROVIDER, code=code, retryable=code in (1011, 1012, 1013, 1014))


def stt_wire_format(encoding: str, sample_rate: int) -> AudioFormat:
    """The audio format a ``/v1/listen`` ``encoding`` and ``sample_rate`` name."""
    if encoding not in STT_ENCODINGS:
        raise AudioFormatError(
            f"encoding={shown(encoding)} is not accepted (accepted: {', '.join(STT_ENCODINGS)})", provider=PROVIDER
        )
    return AudioFormat(STT_ENCODINGS[encoding], sample_rate)  # type: ignore[arg-type]


# --- TTS formats ------------------------------------------------------------------------------------------------

_CONTAINER_OUTPUTS: Final = {"mp3": ("mp3", 22050), "ogg_opus": ("opus", 48000), "flac": ("flac", None)}


def speak_query(format: AudioFormat, *, websocket: bool) -> list[tuple[str, str]] | None:
    """The ``encoding``/``container``/``sample_rate`` that make ``/v1/speak`` produce ``format``, or None when
    Deepgram cannot produce it directly (the caller then asks for linear16 and converts)."""
    if format.channels != 1:
        return None
    encoding = next((name for name, fmt in TTS_WS_ENCODINGS.items() if fmt == format.encoding), None)
    if encoding is not None and format.sample_rate in TTS_SAMPLE_RATES[encoding]:
        query = [("encoding", encoding), ("sample_rate", str(format.sample_rate))]
        return query if websocket else [*query, ("container", "none")]
    if websocket:
        return None
    if format.encoding == "wav" and format.sample_rate in TTS_SAMPLE_RATES["linear16"]:
        return [("encoding", "linear16"), ("container", "wav"), ("sample_rate", str(format.sample_rate))]
    if format.encoding in _CONTAINER_OUTPUTS:
        name, fixed_rate = _CONTAINER_OUTPUTS[format.encoding]
        if fixed_rate is not None and format.sample_rate not in (None, fixed_rate):
            return None
        query = [("encoding", name)]
        return [*query, ("sample_rate", str(format.sample_rate))] if name == "flac" and format.sample_rate else query
    return None


def speak_format(params: Mapping[str, str], *, websocket: bool) -> AudioFormat:
    """The audio format a ``/v1/speak`` query asks for (Deepgram's defaults filled in); refused values raise
    :class:`AudioFormatError` naming what is accepted."""
    encodings = TTS_WS_ENCODINGS if websocket else TTS_REST_ENCODINGS
    encoding = params.get("encoding", "linear16")
    if encoding not in encodings:
        raise AudioFormatError(f"encoding={shown(encoding)} is not accepted (accepted: {', '.join(encodings)})")
    rate_text = params.get("sample_rate")
    try:
        rate = int(rate_text) if rate_text else None
    except ValueError:
        raise AudioFormatError(f"sample_rate={shown(rate_text)} is not an integer") from None
    if encoding in TTS_SAMPLE_RATES:
        rate = rate or TTS_SAMPLE_RATES[encoding][0 if encoding != "linear16" else 2]
        if rate not in TTS_SAMPLE_RATES[encoding]:
            allowed = ", ".join(map(str, TTS_SAMPLE_RATES[encoding]))
            raise AudioFormatError(f"sample_rate={rate} is not accepted for {encoding} (accepted: {allowed})")
        container = "none" if websocket else params.get("container", "wav")
        if container == "wav" and encoding == "linear16":
            return AudioFormat("wav", rate)
        if container != "none":
            raise AudioFormatError(f"container={shown(container)} is not accepted for {encoding} here (accepted: none)")
        return AudioFormat(TTS_WS_ENCODINGS[encoding], rate)  # type: ignore[arg-type]
    fixed_rate = _CONTAINER_OUTPUTS[TTS_REST_ENCODINGS[encoding]][1]
    return AudioFormat(TTS_REST_ENCODINGS[encoding], fixed_rate or rate or 48000)  # type: ignore[arg-type]
