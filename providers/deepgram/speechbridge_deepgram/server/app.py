"""The Starlette app of a Deepgram front: routes, authentication and the REST endpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from speechbridge.audio import AudioFormat, identify
from speechbridge.errors import AudioFormatError, ConfigError, InvalidRequest, ProtocolError, SpeechBridgeError
from speechbridge.settings import settings_fields
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

from ..protocol import (
    GRANT_PATH,
    LISTEN_PATH,
    SPEAK_PATH,
    listen_response,
    rest_error_body,
    speak_format,
    stt_wire_format,
)
from ..settings import VOICE_PATTERN
from .auth import Denied, KeyRing, presented_credentials
from .listen import ListenSession, now_iso, stream_options
from .speak import SpeakSession

__all__ = ["MAX_BODY_BYTES", "DeepgramFront", "make_app"]

MEDIA_TYPES: Final = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg_opus": "audio/ogg", "flac": "audio/flac"}
_REFUSED: Final = (AudioFormatError, ConfigError, InvalidRequest, ProtocolError)
MAX_GRANT_TTL_S: Final = 3600
MAX_BODY_BYTES: Final = 128 * 1024 * 1024
"""The largest request body the front reads (HTTP 413 above): about an hour of 16 kHz WAV, two of MP3."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(rest_error_body(status, message, str(uuid.uuid4())), status_code=status)


def _failure(error: SpeechBridgeError) -> JSONResponse:
    """400 for what the client sent, 502 for a backend failure."""
    return _error(400 if isinstance(error, _REFUSED) else 502, error.message)


class DeepgramFront:
    """The Deepgram API over ``stt`` and ``tts``; ``voices`` maps Deepgram models (aura-2-thalia-en) to backend
    voices (None: the backend's default), any other well-formed Aura name meaning the default voice."""

    def __init__(
        self,
        stt: STTProvider[Any] | None,
        tts: TTSProvider[Any] | None,
        *,
        keys: KeyRing,
        voices: Mapping[str, str | None],
    ) -> None:
        self.stt, self.tts, self.keys, self.voices = stt, tts, keys, dict(voices)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(LISTEN_PATH, self.listen_rest, methods=["POST"]),
            WebSocketRoute(LISTEN_PATH, self.listen_socket),
            Route(SPEAK_PATH, self.speak_rest, methods=["POST"]),
            WebSocketRoute(SPEAK_PATH, self.speak_socket),
            Route(GRANT_PATH, self.grant, methods=["POST"]),
        ]

    # --- STT --------------------------------------------------------------------------------------------------

    async def listen_rest(self, request: Request) -> Response:
        if (denied := self._denied(request.headers)) is not None:
            return denied
        if self.stt is None:
            return _error(404, "this server has no speech-to-text backend")
        if request.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "this server transcribes audio sent in the body, not URLs")
        audio = await request.body()
        params = request.query_params
        try:
            fmt = self._rest_format(audio, params)
            transcript = await self.stt.transcribe(audio, format=fmt, **stream_options(self.stt, params))
        except SpeechBridgeError as error:
            if isinstance(error, AudioFormatError):
                return _error(
                    400, f"Bad Request: failed to process audio: corrupt or unsupported data ({error.message})"
                )
            return _failure(error)
        duration = max(transcript.end_s or 0.0, _duration(audio, fmt))
        body = listen_response(
            transcript.text,
            transcript.words,
            request_id=str(uuid.uuid4()),
            duration=duration,
            model=params.get("model", "nova-3"),
            created=now_iso(),
            language=transcript.language,
        )
        return JSONResponse(body)

    @staticmethod
    def _rest_format(audio: bytes, params: Mapping[str, str]) -> AudioFormat:
        if not audio:
            raise AudioFormatError("the body holds no audio")
        encoding = params.get("encoding")
        if encoding is None:
            return identify(audio)
        try:
            return stt_wire_format(encoding, int(params.get("sample_rate", "")))
        except ValueError:
            raise AudioFormatError("raw audio needs an integer sample_rate with its encoding") from None

    async def listen_socket(self, websocket: WebSocket) -> None:
        if self.stt is None:
            await websocket.send_denial_response(_error(404, "this server has no speech-to-text backend"))
            return
        request_id = str(uuid.uuid4())
        if await self._accept(websocket, request_id):
            await ListenSession(websocket, self.stt, websocket.query_params, request_id).run()

    # --- TTS --------------------------------------------------------------------------------------------------

    async def speak_rest(self, request: Request) -> Response:
        if (denied := self._denied(request.headers)) is not None:
            return denied
        if self.tts is None:
            return _error(404, "this server has no text-to-speech backend")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, 'the body must be JSON such as {"text": "Hello"}')
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _error(400, "the body needs a non-empty 'text'")
        try:
            fmt = speak_format(request.query_params, websocket=False)
            synthesis = await self.tts.synthesize(text, format=fmt, **self._speak_options(request.query_params))
        except SpeechBridgeError as error:
            return _failure(error)
        media_type = MEDIA_TYPES.get(synthesis.format.encoding, "application/octet-stream")
        headers = {
            "dg-request-id": str(uuid.uuid4()),
            "dg-model-name": request.query_params.get("model", ""),
            "dg-char-count": str(len(text)),
        }
        return Response(synthesis.audio, media_type=media_type, headers=headers)

    async def speak_socket(self, websocket: WebSocket) -> None:
        if self.tts is None:
            await websocket.send_denial_response(_error(404, "this server has no text-to-speech backend"))
            return
        params = websocket.query_params
        try:
            fmt = speak_format(params, websocket=True)
            options = self._speak_options(params)
        except SpeechBridgeError as error:
            await websocket.send_denial_response(_failure(error))
            return
        request_id = str(uuid.uuid4())
        if await self._accept(websocket, request_id):
            await SpeakSession(websocket, self.tts, fmt, params.get("model", ""), options, request_id).run()

    def _speak_options(self, params: Mapping[str, str]) -> dict[str, Any]:
        assert self.tts is not None
        options: dict[str, Any] = {}
        model = params.get("model")
        if model is not None:
            if model not in self.voices and not VOICE_PATTERN.fullmatch(model):
                raise ConfigError(f"model={model!r} is not a voice of this server", allowed=self.voices or None)
            if self.voices.get(model) is not None:
                options["voice"] = self.voices[model]
        if "speed" in params:
            if "speed" not in settings_fields(self.tts.Settings):
                raise ConfigError(f"speed cannot be set on this server's {self.tts.name} backend")
            try:
                options["speed"] = float(params["speed"])
            except ValueError:
                raise ConfigError(f"speed={params['speed']!r} is not a number") from None
        return options

    # --- auth -------------------------------------------------------------------------------------------------

    async def grant(self, request: Request) -> Response:
        try:
            self.keys.check(presented_credentials(request.headers), key_only=True)
        except Denied as denied:
            return _error(401, denied.message)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, 'the body must be JSON such as {"ttl_seconds": 30}')
        ttl = body.get("ttl_seconds", 30) if isinstance(body, dict) else None
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_GRANT_TTL_S:
            return _error(400, f"ttl_seconds must be an integer from 1 to {MAX_GRANT_TTL_S}")
        return JSONResponse({"access_token": self.keys.mint(ttl), "expires_in": ttl})

    def _denied(self, headers: Mapping[str, str]) -> Response | None:
        try:
            self.keys.check(presented_credentials(headers))
        except Denied as denied:
            return _error(401, denied.message)
        return None

    async def _accept(self, websocket: WebSocket, request_id: str) -> bool:
        """Check the credentials and accept, answering ``dg-request-id`` (and the subprotocol a browser used)."""
        presented = presented_credentials(websocket.headers)
        try:
            self.keys.check(presented)
        except Denied as denied:
            await websocket.send_denial_response(_error(401, denied.message))
            return False
        await websocket.accept(subprotocol=presented.subprotocol, headers=[(b"dg-request-id", request_id.encode())])
        return True


def _duration(audio: bytes, fmt: AudioFormat) -> float:
    return len(audio) / fmt.bytes_for(1.0) if fmt.is_raw else 0.0


def make_app(
    stt: STTProvider[Any] | None,
    tts: TTSProvider[Any] | None,
    *,
    api_keys: Collection[str] | None = None,
    voices: Mapping[str, str | None] | None = None,
) -> Starlette:
    """A wire-compatible Deepgram server (ASGI) whose speech is done by ``stt`` and ``tts``.

    ``api_keys``: the keys accepted as ``Authorization: Token`` (None: any non-empty key); grant tokens it mints at
    ``POST /v1/auth/grant`` are accepted as ``Bearer``. ``voices``: Deepgram model -> backend voice.
    """
    front = DeepgramFront(stt, tts, keys=KeyRing(api_keys), voices=voices or {})
    app = Starlette(routes=front.routes(), max_body_size=MAX_BODY_BYTES)
    app.state.front = front
    return app
