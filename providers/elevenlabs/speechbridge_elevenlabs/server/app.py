"""The Starlette app of an ElevenLabs front: routes, authentication, the REST endpoints and the sockets."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
    UnsupportedFeature,
)
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider, TTSStream

from ..protocol import (
    DEFAULT_OUTPUT_FORMAT,
    STT_PATH,
    STT_WS_PATH,
    TOKEN_PATH,
    VOICES_PATH,
    parse_output_format,
    parse_tts_client_message,
    server_rest_error,
    server_stt_error,
    server_tts_error,
)
from ..settings import DEFAULT_VOICE_ID
from .auth import KeyRing, Refused
from .stt import realtime_session, transcribe_upload
from .tts import SocketSession, TextAligner, is_unknown_voice

__all__ = ["MAX_BODY_BYTES", "ElevenLabsFront", "make_app"]

REST_CHUNK_BYTES: Final = 16384
MEDIA_TYPES: Final = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg_opus": "audio/ogg", "mulaw": "audio/basic",
                      "alaw": "audio/x-alaw-basic"}  # fmt: skip
NULL_FORM_VALUES: Final = ("", "null", "None")
MAX_BODY_BYTES: Final = 128 * 1024 * 1024
"""The largest request body the front reads (HTTP 413 above): about an hour of 16 kHz WAV, two of MP3."""


class ElevenLabsFront:
    """What the routes share: the backends, the keys, and the map from ElevenLabs voice ids to backend voices."""

    def __init__(
        self,
        stt: STTProvider[Any] | None,
        tts: TTSProvider[Any] | None,
        *,
        keys: KeyRing,
        voice_map: Mapping[str, str | None],
    ) -> None:
        self.stt, self.tts, self.keys, self.voice_map = stt, tts, keys, dict(voice_map)
        self.connections = 0

    # --- STT ----------------------------------------------------------------------------------------------------

    async def speech_to_text(self, request: Request) -> Response:
        try:
            self.keys.check(request.headers.get("xi-api-key"), request.query_params.get("token"), "batch_scribe")
            if self.stt is None:
                raise UnsupportedFeature("this front has no STT backend")
            async with request.form() as form:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise InvalidRequest("the form needs a 'file' (source_url and cloud_storage_url are not served)")
                if _form_value(form, "model_id") is None:
                    raise InvalidRequest("the form needs a 'model_id'")
                file_format = _form_value(form, "file_format") or "other"
                data = await upload.read()
            return JSONResponse(await transcribe_upload(self.stt, data, file_format))
        except Refused as refused:
            return _refused(refused)
        except SpeechBridgeError as error:
            return _rest_error(error)

    async def realtime(self, websocket: WebSocket) -> None:
        self.connections += 1
        query = websocket.query_params
        await websocket.accept()
        try:
            self.keys.check(websocket.headers.get("xi-api-key"), query.get("token"), "realtime_scribe")
        except Refused as refused:
            await websocket.send_text(json.dumps(server_stt_error("auth_error", refused.message)))
            await websocket.close(1008, "auth_error")
            return
        if self.stt is None:
            await websocket.send_text(json.dumps(server_stt_error("invalid_request", "this front has no STT backend")))
            await websocket.close(1008)
            return
        await realtime_session(websocket, self.stt, dict(query))

    # --- TTS ----------------------------------------------------------------------------------------------------

    async def voice_options(self, voice_id: str) -> dict[str, Any]:
        """The backend's options for an ElevenLabs ``voice_id``; an unknown one is a :class:`ConfigError`."""
        assert self.tts is not None
        if voice_id in self.voice_map:
            voice = self.voice_map[voice_id]
            return {} if voice is None else {"voice": voice}
        known = [voice.id for voice in await self.tts.voices()]
        if voice_id not in known:
            raise ConfigError(f"A voice with the voice_id {voice_id!r} was not found", allowed=known)
        return {"voice": voice_id}

    async def text_to_speech(self, request: Request, *, streaming: bool, timestamps: bool) -> Response:
        voice_id = request.path_params["voice_id"]
        try:
            self.keys.check_key(request.headers.get("xi-api-key"))
            if self.tts is None:
                raise UnsupportedFeature("this front has no TTS backend")
            fmt = parse_output_format(
                request.query_params.get("output_format", DEFAULT_OUTPUT_FORMAT), streaming=streaming
            )
            body = await _json_body(request)
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                return JSONResponse({"detail": [{"loc": ["body", "text"], "msg": "field required",
                                                 "type": "value_error.missing"}]}, status_code=422)  # fmt: skip
            options = await self.voice_options(voice_id)
            synthesis = await self.tts.synthesize(text, format=fmt, **options)
        except Refused as refused:
            return _refused(refused)
        except SpeechBridgeError as error:
            return _rest_error(error)
        media_type = MEDIA_TYPES.get(synthesis.format.encoding, "application/octet-stream")
        if not timestamps:
            if streaming:
                return StreamingResponse(_chunks(synthesis.audio), media_type=media_type)
            return Response(synthesis.audio, media_type=media_type)
        aligner = TextAligner()
        aligner.receive(text)
        for word in synthesis.words:
            aligner.word(word)
        aligner.settle(synthesis.duration_s or 0.0)
        alignment = aligner.take(0.0)
        rest = alignment.to_rest() if alignment is not None else None
        if not streaming:
            encoded = base64.b64encode(synthesis.audio).decode("ascii")
            return JSONResponse({"audio_base64": encoded, "alignment": rest, "normalized_alignment": rest})
        return StreamingResponse(_ndjson_chunks(synthesis.audio, rest), media_type="application/x-ndjson")

    async def tts_socket(self, websocket: WebSocket) -> None:
        self.connections += 1
        voice_id = websocket.path_params["voice_id"]
        multi = websocket.url.path.endswith("/multi-stream-input")
        query = websocket.query_params
        await websocket.accept()
        first: str | None = None
        try:
            key, token = websocket.headers.get("xi-api-key"), query.get("single_use_token")
            if key is None and token is None:
                first = await websocket.receive_text()
                key = parse_tts_client_message(first).api_key if first else None  # type: ignore[union-attr]
            self.keys.check(key, token, "tts_websocket")
            if self.tts is None:
                raise UnsupportedFeature("this front has no TTS backend")
            fmt = parse_output_format(query.get("output_format", DEFAULT_OUTPUT_FORMAT), streaming=True)
            if not fmt.is_raw:
                raise UnsupportedFeature(
                    f"this front streams raw audio, not {fmt} (accepted output_format: pcm_*, ulaw_8000, alaw_8000)"
                )
            options = await self.voice_options(voice_id)
        except (Refused, SpeechBridgeError) as error:
            kind = error.status if isinstance(error, Refused) else "voice_not_found" if is_unknown_voice(error) else (
                "invalid_request")  # fmt: skip
            await websocket.send_text(json.dumps(server_tts_error(kind, str(error.message), 1008)))
            await websocket.close(1008, kind)
            return
        tts = self.tts

        async def open_stream() -> TTSStream:
            stream = tts.stream(format=fmt, **options)
            await stream.open()
            return stream

        await SocketSession(websocket, open_stream, multi=multi, first=first).run()

    # --- account ------------------------------------------------------------------------------------------------

    async def single_use_token(self, request: Request) -> Response:
        try:
            token = self.keys.mint(request.headers.get("xi-api-key"), request.path_params["token_type"])
        except Refused as refused:
            return _refused(refused)
        return JSONResponse({"token": token})

    async def voices(self, request: Request) -> Response:
        try:
            self.keys.check_key(request.headers.get("xi-api-key"))
        except Refused as refused:
            return _refused(refused)
        listed = await self.tts.voices() if self.tts is not None else []
        voices = [{"voice_id": voice.id, "name": voice.name, "category": "premade", "description": voice.description,
                   "labels": {"language": voice.language} if voice.language else {}} for voice in listed]  # fmt: skip
        known = {voice["voice_id"] for voice in voices}
        voices += [{"voice_id": voice_id, "name": f"default ({voice_id})", "category": "premade", "description": None,
                    "labels": {}} for voice_id in self.voice_map if voice_id not in known]  # fmt: skip
        return JSONResponse({"voices": voices})

    def routes(self) -> list[BaseRoute]:
        tts = "/v1/text-to-speech/{voice_id}"
        return [
            Route(STT_PATH, self.speech_to_text, methods=["POST"]),
            WebSocketRoute(STT_WS_PATH, self.realtime),
            *(
                Route(tts + suffix, functools.partial(self.text_to_speech, streaming=streaming, timestamps=timestamps),
                      methods=["POST"])
                for suffix, streaming, timestamps in (
                    ("", False, False), ("/stream", True, False), ("/with-timestamps", False, True),
                    ("/stream/with-timestamps", True, True),
                )
            ),
            WebSocketRoute(tts + "/stream-input", self.tts_socket),
            WebSocketRoute(tts + "/multi-stream-input", self.tts_socket),
            Route(TOKEN_PATH, self.single_use_token, methods=["POST"]),
            Route(VOICES_PATH, self.voices, methods=["GET"]),
        ]  # fmt: skip


def _form_value(form: Any, name: str) -> str | None:
    value = form.get(name)
    return None if value is None or (isinstance(value, str) and value in NULL_FORM_VALUES) else str(value)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


async def _chunks(audio: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(audio), REST_CHUNK_BYTES):
        yield audio[start : start + REST_CHUNK_BYTES]


async def _ndjson_chunks(audio: bytes, alignment: dict[str, Any] | None) -> AsyncIterator[bytes]:
    for start in range(0, max(len(audio), 1), REST_CHUNK_BYTES):
        line = {"audio_base64": base64.b64encode(audio[start : start + REST_CHUNK_BYTES]).decode("ascii"),
                "alignment": alignment if start == 0 else None,
                "normalized_alignment": alignment if start == 0 else None}  # fmt: skip
        yield json.dumps(line).encode() + b"\n"


def _refused(refused: Refused) -> Response:
    return JSONResponse(server_rest_error(refused.status, refused.message), status_code=401)


def _rest_error(error: SpeechBridgeError) -> Response:
    if is_unknown_voice(error):
        status, kind = 404, "voice_not_found"
    elif isinstance(error, AuthenticationError):
        status, kind = 401, "invalid_api_key"
    elif isinstance(error, RateLimitError):
        status, kind = 429, "too_many_concurrent_requests"
    elif isinstance(error, QuotaExceeded):
        status, kind = 401, "quota_exceeded"
    elif isinstance(error, (ConfigError, AudioFormatError, InvalidRequest, ProtocolError, UnsupportedFeature)):
        status, kind = 400, "invalid_request"
    else:
        status, kind = 500, "internal_error"
    return JSONResponse(server_rest_error(kind, error.message), status_code=status)


def make_app(
    stt: STTProvider[Any] | None,
    tts: TTSProvider[Any] | None,
    *,
    api_keys: Collection[str] | None = None,
    voice_map: Mapping[str, str | None] | None = None,
) -> Starlette:
    """An ElevenLabs-compatible server over ``stt`` and ``tts``.

    ``api_keys`` limits who may connect (any non-empty key when None). ``voice_map`` maps ElevenLabs voice ids to
    backend voices (None: the backend's default); by default ElevenLabs' default voice maps to the backend's default,
    and every backend voice id is served under its own name.
    """
    front = ElevenLabsFront(
        stt, tts, keys=KeyRing(api_keys), voice_map=voice_map if voice_map is not None else {DEFAULT_VOICE_ID: None}
    )
    app = Starlette(routes=front.routes(), max_body_size=MAX_BODY_BYTES)
    app.state.front = front
    return app
