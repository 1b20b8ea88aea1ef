"""The Gradium speech API on the wire, with no I/O: building and reading every message, both directions.

Clients use the ``client_*`` builders and :func:`parse_server_message`; the wire-compatible server uses
:func:`parse_client_message` and the ``server_*`` builders. Where sources disagree (see the protocol notes), readers
accept every variant seen in real clients and servers: ``json_config`` as an object or a JSON string, ``flush_id`` of
any JSON type (echoed unchanged), ``stream_id`` missing or null, ``delay_in_tokens`` for ``delay_in_frames``.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

import attrs

from speechbridge.audio import AudioFormat
from speechbridge.errors import (
    AuthenticationError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    SpeechBridgeError,
)
from speechbridge.wire import decode_base64, finite, parse_json, shown

__all__ = [
    "API_HOSTS",
    "CREDITS_PATH",
    "DELAYS_IN_FRAMES",
    "FRAME_S",
    "LANGUAGES",
    "PCM_RATES",
    "PROVIDER",
    "REST_CONTENT_TYPES",
    "STT_INPUT_FORMATS",
    "STT_POST_PATH",
    "STT_WS_PATH",
    "TOKEN_PATH",
    "TTS_OUTPUT_FORMATS",
    "TTS_POST_PATH",
    "TTS_WS_PATH",
    "VAD_HORIZONS_S",
    "VOICES_PATH",
    "AudioIn",
    "AudioOut",
    "ClientMessage",
    "EndOfStreamIn",
    "EndOfStreamOut",
    "EndTextOut",
    "ErrorOut",
    "FlushIn",
    "FlushedOut",
    "OtherOut",
    "ReadyOut",
    "ServerMessage",
    "Setup",
    "StepOut",
    "TextIn",
    "TextOut",
    "client_audio",
    "client_end_of_stream",
    "client_flush",
    "client_setup",
    "client_text",
    "error_from_code",
    "error_from_rest",
    "parse_client_message",
    "parse_server_message",
    "read_json_config",
    "server_audio",
    "server_end_of_stream",
    "server_end_text",
    "server_error",
    "server_flushed",
    "server_step",
    "server_stt_ready",
    "server_text",
    "server_tts_ready",
    "with_request",
]

PROVIDER: Final = "gradium"
API_HOSTS: Final = {
    "default": "https://api.gradium.ai/api",
    "eu": "https://eu.api.gradium.ai/api",
    "us": "https://us.api.gradium.ai/api",
}
STT_WS_PATH: Final = "/speech/asr"
TTS_WS_PATH: Final = "/speech/tts"
STT_POST_PATH: Final = "/post/speech/asr"
TTS_POST_PATH: Final = "/post/speech/tts"
TOKEN_PATH: Final = "/api-keys/token"
CREDITS_PATH: Final = "/usages/credits"
VOICES_PATH: Final = "/voices/"

FRAME_S: Final = 0.08  # one model step
VAD_HORIZONS_S: Final = (0.5, 1.0, 2.0, 3.0)
LANGUAGES: Final = ("en", "fr", "de", "es", "pt")
DELAYS_IN_FRAMES: Final = (7, 8, 10, 12, 14, 16, 20, 24, 32, 36, 48)
PCM_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)

# input_format / output_format names and what they hold. Bare "pcm" is 24 kHz for STT input and 48 kHz for TTS output.
STT_INPUT_FORMATS: Final[Mapping[str, AudioFormat]] = {
    "pcm": AudioFormat.pcm16(24000),
    **{f"pcm_{rate}": AudioFormat.pcm16(rate) for rate in PCM_RATES},
    "ulaw_8000": AudioFormat("mulaw", 8000),
    "mulaw_8000": AudioFormat("mulaw", 8000),
    "alaw_8000": AudioFormat("alaw", 8000),
    "wav": AudioFormat("wav"),
    "opus": AudioFormat("ogg_opus"),
}
TTS_OUTPUT_FORMATS: Final[Mapping[str, AudioFormat]] = {
    "pcm": AudioFormat.pcm16(48000),
    **{f"pcm_{rate}": AudioFormat.pcm16(rate) for rate in PCM_RATES},
    "ulaw_8000": AudioFormat("mulaw", 8000),
    "mulaw_8000": AudioFormat("mulaw", 8000),
    "alaw_8000": AudioFormat("alaw", 8000),
    "wav": AudioFormat("wav", 48000),
    "opus": AudioFormat("ogg_opus", 48000),
}
REST_CONTENT_TYPES: Final = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/pcm": "pcm", "audio/ogg": "opus",
                             "audio/opus": "opus"}  # fmt: skip


# --- client -> server -------------------------------------------------------------------------------------------


@attrs.frozen
class Setup:
    """The first message of a request: STT when ``input_format`` is set, TTS when a voice or output format is."""

    kind: str  # "stt" or "tts"
    model_name: str = "default"
    input_format: str | None = None
    output_format: str | None = None
    voice_id: str | None = None
    voice: str | None = None
    pronunciation_id: str | None = None
    json_config: Mapping[str, Any] = attrs.field(factory=dict)
    client_req_id: str | None = None
    close_ws_on_eos: bool = True


@attrs.frozen
class AudioIn:
    audio: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    client_req_id: str | None = None


@attrs.frozen
class TextIn:
    text: str
    client_req_id: str | None = None


@attrs.frozen
class FlushIn:
    flush_id: Any  # echoed back unchanged: an int per the docs, a string from pipecat
    client_req_id: str | None = None


@attrs.frozen
class EndOfStreamIn:
    client_req_id: str | None = None


ClientMessage: TypeAlias = Setup | AudioIn | TextIn | FlushIn | EndOfStreamIn


def _drop_none(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if value is not None}


def client_setup(setup: Setup) -> dict[str, Any]:
    """The ``setup`` message (``json_config`` as an object, which every server accepts)."""
    return _drop_none(
        {
            "type": "setup",
            "model_name": setup.model_name,
            "input_format": setup.input_format,
            "output_format": setup.output_format,
            "voice_id": setup.voice_id,
            "voice": setup.voice,
            "pronunciation_id": setup.pronunciation_id,
            "json_config": dict(setup.json_config) or None,
            "client_req_id": setup.client_req_id,
            "close_ws_on_eos": None if setup.close_ws_on_eos else False,
        }
    )


def client_audio(audio: bytes, client_req_id: str | None = None) -> dict[str, Any]:
    return _drop_none(
        {"type": "audio", "audio": base64.b64encode(audio).decode("ascii"), "client_req_id": client_req_id}
    )


def client_text(text: str, client_req_id: str | None = None) -> dict[str, Any]:
    return _drop_none({"type": "text", "text": text, "client_req_id": client_req_id})


def client_flush(flush_id: int, client_req_id: str | None = None) -> dict[str, Any]:
    return _drop_none({"type": "flush", "flush_id": flush_id, "client_req_id": client_req_id})


def client_end_of_stream(client_req_id: str | None = None) -> dict[str, Any]:
    return _drop_none({"type": "end_of_stream", "client_req_id": client_req_id})


def _load(frame: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """A frame's JSON object; an already parsed one (an NDJSON line) passes through."""
    message = parse_json(frame, provider=PROVIDER) if isinstance(frame, (str, bytes, bytearray)) else frame
    if not (type(message) is dict or isinstance(message, Mapping)) or not isinstance(message.get("type"), str):
        raise ProtocolError("message is not a JSON object with a string 'type'", provider=PROVIDER)
    return message


def _field(message: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``message[name]`` if it is of ``kind`` (a bool is no number; numbers must be finite); ``default`` when it is
    missing or null, and without a default a missing field is an error."""
    value = message.get(name)
    if value is None:
        if default is ...:
            raise ProtocolError(f"{shown(message['type'])} message has no {name!r}", provider=PROVIDER)
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) == (bool in kinds) and isinstance(value, kinds):
        if float not in kinds or isinstance(value, str):
            return value
        if (number := finite(value)) is not None:
            return number
    raise ProtocolError(f"{shown(message['type'])} message has a malformed {name!r}: {shown(value)}", provider=PROVIDER)


def read_json_config(value: Any) -> dict[str, Any]:
    """``json_config`` as sent: an object, a JSON string of one, or absent."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise InvalidRequest(
                f"json_config is not valid JSON: {value[:80]!r}", provider=PROVIDER, code=1003
            ) from None
    if not isinstance(value, dict):
        raise InvalidRequest("json_config must be a JSON object", provider=PROVIDER, code=1003)
    return value


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Read a client's message (the server side)."""
    message = _load(frame)
    kind = message["type"]
    req = message.get("client_req_id")
    if req is not None:
        req = str(_field(message, "client_req_id", (str, int)))
    if kind == "setup":
        is_tts = any(key in message for key in ("voice_id", "voice", "output_format")) and "input_format" not in message
        return Setup(
            kind="tts" if is_tts else "stt",
            model_name=_field(message, "model_name", str, None) or "default",
            input_format=_field(message, "input_format", str, None),
            output_format=_field(message, "output_format", str, None),
            voice_id=_field(message, "voice_id", str, None),
            voice=_field(message, "voice", str, None),
            pronunciation_id=_field(message, "pronunciation_id", str, None),
            json_config=read_json_config(message.get("json_config")),
            client_req_id=req,
            close_ws_on_eos=_field(message, "close_ws_on_eos", bool, True) is not False,
        )
    if kind == "audio":
        return AudioIn(decode_base64(message.get("audio"), "audio", provider=PROVIDER), req)
    if kind == "text":
        return TextIn(_field(message, "text", str), req)
    if kind == "flush":
        return FlushIn(message.get("flush_id", 0), req)
    if kind == "end_of_stream":
        return EndOfStreamIn(req)
    raise ProtocolError(f"unknown message type {shown(kind)}", provider=PROVIDER)


# --- server -> client -------------------------------------------------------------------------------------------
# Built for every message a client receives, so plain slotted classes: frozen ones take twice as long to build.


@attrs.define
class ReadyOut:
    request_id: str | None
    sample_rate: int | None
    frame_size: int | None
    delay_in_frames: float | None
    client_req_id: str | None = None


@attrs.define
class TextOut:
    text: str
    start_s: float
    stop_s: float | None = None  # TTS word timings carry it; STT sends end_text instead
    client_req_id: str | None = None


@attrs.define
class EndTextOut:
    stop_s: float
    client_req_id: str | None = None


@attrs.define
class StepOut:
    vad: tuple[tuple[float, float], ...]  # (horizon_s, inactivity_prob), ascending horizons
    step_idx: int
    total_duration_s: float
    client_req_id: str | None = None


@attrs.define
class FlushedOut:
    flush_id: Any
    client_req_id: str | None = None


@attrs.define
class AudioOut:
    audio: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    start_s: float | None = None
    stop_s: float | None = None
    client_req_id: str | None = None


@attrs.define
class EndOfStreamOut:
    client_req_id: str | None = None


@attrs.define
class ErrorOut:
    message: str
    code: int | None = None
    client_req_id: str | None = None

    def to_error(self) -> SpeechBridgeError:
        return error_from_code(self.code, self.message)


@attrs.define
class OtherOut:
    """A message type this client does not know (e.g. ``need_more_text``): ignored, never fatal."""

    type: str
    client_req_id: str | None = None


ServerMessage: TypeAlias = (
    ReadyOut | TextOut | EndTextOut | StepOut | FlushedOut | AudioOut | EndOfStreamOut | ErrorOut | OtherOut
)
_NUMBER = (int, float)


def _vad_pairs(entries: list[Any]) -> tuple[tuple[float, float], ...]:
    """``step.vad`` as ``(horizon_s, inactivity_prob)`` pairs by horizon; plain finite floats are taken as they are."""
    pairs = []
    for entry in entries:
        if type(entry) is dict:
            horizon, probability = entry.get("horizon_s"), entry.get("inactivity_prob")
            if type(horizon) is type(probability) is float and math.isfinite(horizon) and math.isfinite(probability):
                pairs.append((horizon, probability))
                continue
        pairs.append(_vad_pair(entry))
    pairs.sort()
    return tuple(pairs)


def _vad_pair(entry: Any) -> tuple[float, float]:
    """A ``step.vad`` entry as ``(horizon_s, inactivity_prob)``."""
    horizon = finite(entry.get("horizon_s")) if isinstance(entry, Mapping) else None
    probability = finite(entry.get("inactivity_prob")) if isinstance(entry, Mapping) else None
    if horizon is None or probability is None:
        raise ProtocolError(f"'step' message has a malformed 'vad' entry: {shown(entry)}", provider=PROVIDER)
    return horizon, probability


def parse_server_message(frame: str | bytes | Mapping[str, Any]) -> ServerMessage:
    """Read a server's message (client side), raw or already parsed; unknown types come back as :class:`OtherOut`."""
    message = _load(frame)
    kind = message["type"]
    req = message.get("client_req_id")
    if req is not None and type(req) is not str:
        req = str(_field(message, "client_req_id", (str, int)))
    if kind == "step":
        vad, index, total = message.get("vad"), message.get("step_idx", 0), message.get("total_duration_s", 0.0)
        if type(vad) is list and type(index) is int and type(total) is float and math.isfinite(total):
            return StepOut(_vad_pairs(vad), index, total, req)  # the hot path, every 80 ms
        return StepOut(
            _vad_pairs(_field(message, "vad", list)),
            int(_field(message, "step_idx", int, 0)),
            float(_field(message, "total_duration_s", _NUMBER, 0.0)),
            req,
        )
    if kind == "ready":
        delay = message.get("delay_in_frames", message.get("delay_in_tokens"))
        return ReadyOut(
            _field(message, "request_id", str, None),
            _field(message, "sample_rate", int, None),
            _field(message, "frame_size", int, None),
            finite(delay),
            req,
        )
    if kind == "text":
        start = _field(message, "start_s", _NUMBER, 0.0)
        return TextOut(_field(message, "text", str), float(start), _field(message, "stop_s", _NUMBER, None), req)
    if kind == "end_text":
        return EndTextOut(float(_field(message, "stop_s", _NUMBER)), req)
    if kind == "flushed":
        return FlushedOut(message.get("flush_id"), req)
    if kind == "audio":
        return AudioOut(
            decode_base64(message.get("audio"), "audio", provider=PROVIDER),
            _field(message, "start_s", _NUMBER, None),
            _field(message, "stop_s", _NUMBER, None),
            req,
        )
    if kind == "end_of_stream":
        return EndOfStreamOut(req)
    if kind == "error":
        code = message.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        return ErrorOut(str(message.get("message", "unknown error")), code, req)
    return OtherOut(kind, req)


def with_request(message: dict[str, Any], client_req_id: str | None) -> dict[str, Any]:
    """``message`` stamped with the request's ``client_req_id`` when it has one."""
    return {**message, "client_req_id": client_req_id} if client_req_id is not None else message


def server_stt_ready(request_id: str, model_name: str, sample_rate: int, delay_in_frames: int) -> dict[str, Any]:
    return {
        "type": "ready",
        "request_id": request_id,
        "model_name": model_name,
        "sample_rate": sample_rate,
        "frame_size": round(sample_rate * FRAME_S),
        "delay_in_frames": delay_in_frames,
        "text_stream_names": [],
    }


def server_tts_ready(request_id: str, model_name: str, sample_rate: int) -> dict[str, Any]:
    return {
        "type": "ready",
        "request_id": request_id,
        "model_name": model_name,
        "sample_rate": sample_rate,
        "frame_size": round(sample_rate * FRAME_S),
        "audio_stream_names": ["audio"],
        "text_stream_names": ["text"],
    }


def server_text(text: str, start_s: float, stop_s: float | None = None) -> dict[str, Any]:
    return _drop_none({"type": "text", "text": text, "start_s": start_s, "stop_s": stop_s, "stream_id": 0})


def server_end_text(stop_s: float) -> dict[str, Any]:
    return {"type": "end_text", "stop_s": stop_s, "stream_id": 0}


def server_step(step_idx: int, inactivity: tuple[float, ...]) -> dict[str, Any]:
    """One 80 ms step; ``inactivity`` holds one probability per horizon of :data:`VAD_HORIZONS_S`."""
    return {
        "type": "step",
        "vad": [{"horizon_s": h, "inactivity_prob": p} for h, p in zip(VAD_HORIZONS_S, inactivity, strict=True)],
        "step_idx": step_idx,
        "step_duration_s": FRAME_S,
        "total_duration_s": round((step_idx + 1) * FRAME_S, 6),
    }


def server_flushed(flush_id: Any) -> dict[str, Any]:
    return {"type": "flushed", "flush_id": flush_id}


def server_audio(audio: bytes, start_s: float, stop_s: float) -> dict[str, Any]:
    data = base64.b64encode(audio).decode("ascii")
    return {"type": "audio", "audio": data, "start_s": start_s, "stop_s": stop_s, "stream_id": 0}


def server_end_of_stream() -> dict[str, Any]:
    return {"type": "end_of_stream"}


def server_error(message: str, code: int) -> dict[str, Any]:
    return {"type": "error", "message": message, "code": code}


# --- errors -----------------------------------------------------------------------------------------------------

_AUTH_WORDS = re.compile(r"api key|token|auth|unauthori[sz]ed|forbidden", re.IGNORECASE)
_QUOTA_WORDS = re.compile(r"credit|concurren|quota|limit", re.IGNORECASE)
_REST_ERROR = re.compile(r"^error from server (?P<code>\d{1,9}): (?P<reason>.*)$", re.DOTALL)


def error_from_code(code: int | None, message: str) -> SpeechBridgeError:
    """The typed error for a Gradium WebSocket error ``code`` (the close code that follows it)."""
    if code == 1008:
        if _AUTH_WORDS.search(message):
            return AuthenticationError(message, provider=PROVIDER, code=code)
        if _QUOTA_WORDS.search(message):
            return QuotaExceeded(message, provider=PROVIDER, code=code)
        return InvalidRequest(message, provider=PROVIDER, code=code)
    if code in (1002, 1003, 1007):
        return InvalidRequest(message, provider=PROVIDER, code=code)
    if code == 1011:
        return ProviderError(message, provider=PROVIDER, code=code, retryable=True)
    return ProviderError(message, provider=PROVIDER, code=code, retryable=code in (None, 1001, 1006, 1012, 1013, 1014))


def error_from_rest(status: int, body: str) -> SpeechBridgeError:
    """The typed error for a non-2xx REST answer: 500 ``error from server <code>: <reason>``, JSON, or any text."""
    text = body.strip()
    match = _REST_ERROR.match(text)
    if match:
        return error_from_code(int(match["code"]), match["reason"])
    try:
        detail = json.loads(text)
    except (ValueError, RecursionError):
        detail = None
    if isinstance(detail, dict):
        text = str(detail.get("detail") or detail.get("error") or detail.get("message") or text)
    if status in (401, 403):
        return AuthenticationError(text, provider=PROVIDER, code=status)
    if status == 402:
        return QuotaExceeded(text, provider=PROVIDER, code=status)
    if status in (400, 404, 409, 413, 415, 422):
        return InvalidRequest(text, provider=PROVIDER, code=status)
    return ProviderError(text or f"HTTP {status}", provider=PROVIDER, code=status, retryable=status >= 500)
