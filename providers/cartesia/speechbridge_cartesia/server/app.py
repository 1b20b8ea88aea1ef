"""The Starlette app of a Cartesia front: routes, authentication and errors."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from speechbridge.errors import InvalidRequest, SpeechBridgeError
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

from ..protocol import (
    PROVIDER,
    STT_BATCH_PATH,
    STT_WS_PATH,
    TOKEN_PATH,
    TTS_BYTES_PATH,
    TTS_SSE_PATH,
    TTS_WS_PATH,
    server_error,
    sse_event,
)
from ..settings import STT_MODELS
from .auth import MAX_TOKEN_TTL_S, AuthFailure, KeyRing
from .failures import Failure, failure_of
from .stt import STTSession, transcribe_request
from .tts import TTSSession, read_generation_request, sse_messages, synthesize_request
from .voices import VoiceCatalog

__all__ = ["MAX_BODY_BYTES", "CartesiaFront", "make_app"]

STREAMING_STT_MODELS: Final = (*STT_MODELS, "ink-2")
MEDIA_TYPES: Final = {"wav": "audio/wav", "mp3": "audio/mpeg"}
MAX_BODY_BYTES: Final = 128 * 1024 * 1024
"""The largest request body the front reads (HTTP 413 above): about an hour of 16 kHz WAV, two of MP3."""


class CartesiaFront:
    """What the routes share: the backends, the keys and the voices."""

    def __init__(
        self, stt: STTProvider[Any] | None, tts: TTSProvider[Any] | None, *, keys: KeyRing, voices: VoiceCatalog
    ) -> None:
        self.stt, self.tts, self.keys, self.voices = stt, tts, keys, voices

    # --- HTTP -----------------------------------------------------------------------------------------------

    @staticmethod
    def _error(failure: Failure) -> JSONResponse:
        return JSONResponse(failure.to_json(), status_code=failure.status)

    def _authenticate(self, request: Request, kind: str | None) -> JSONResponse | None:
        try:
            self.keys.check(request.headers, request.query_params, kind=kind)
        except AuthFailure as failure:
            return self._error(Failure(failure.status, "unauthorized", failure.message))
        return None

    async def transcribe(self, request: Request) -> Response:
        if self.stt is None:
            return self._error(Failure(404, "not_found", "this server has no speech-to-text backend"))
        if (denied := self._authenticate(request, "stt")) is not None:
            return denied
        try:
            answer = await transcribe_request(self.stt, request)
        except SpeechBridgeError as error:
            return self._error(failure_of(error))
        return JSONResponse(answer)

    async def tts_bytes(self, request: Request) -> Response:
        return await self._synthesize(request, sse=False)

    async def tts_sse(self, request: Request) -> Response:
        return await self._synthesize(request, sse=True)

    async def _synthesize(self, request: Request, *, sse: bool) -> Response:
        if self.tts is None:
            return self._error(Failure(404, "not_found", "this server has no text-to-speech backend"))
        if (denied := self._authenticate(request, "tts")) is not None:
            return denied
        try:
            generation = read_generation_request(await request.body())
            if sse and generation.output_format.container != "raw":
                raise InvalidRequest(
                    "/tts/sse streams raw audio: output_format.container must be 'raw'", provider=PROVIDER, code=400
                )
            synthesis = await synthesize_request(self.tts, self.voices, generation)
        except SpeechBridgeError as error:
            return self._error(failure_of(error))
        if sse:
            body = b"".join(sse_event(message) for message in sse_messages(generation, synthesis))
            return Response(body, media_type="text/event-stream")
        media_type = MEDIA_TYPES.get(generation.output_format.container, "application/octet-stream")
        return Response(synthesis.audio, media_type=media_type)

    async def access_token(self, request: Request) -> Response:
        try:
            self.keys.check_key(_key_of(request.headers, request.query_params))
        except AuthFailure as failure:
            return self._error(Failure(failure.status, "unauthorized", failure.message))
        try:
            body = await request.json()
        except ValueError:
            body = None
        grants = body.get("grants") if isinstance(body, dict) else None
        expires_in = body.get("expires_in", 60) if isinstance(body, dict) else None
        if not isinstance(grants, dict) or not isinstance(expires_in, int) or not 1 <= expires_in <= MAX_TOKEN_TTL_S:
            return self._error(
                Failure(
                    400,
                    "invalid_request",
                    f"the body needs grants {{tts, stt}} and expires_in (1 to {MAX_TOKEN_TTL_S} seconds)",
                )
            )
        token = self.keys.mint(stt=grants.get("stt") is True, tts=grants.get("tts") is True, expires_in=expires_in)
        return JSONResponse({"token": token})

    async def list_voices(self, request: Request) -> Response:
        if (denied := self._authenticate(request, None)) is not None:
            return denied
        try:
            voices = await self.voices.to_json()
        except SpeechBridgeError as error:
            return self._error(failure_of(error))
        return JSONResponse({"data": voices, "has_more": False, "next_page": None})

    # --- WebSocket ------------------------------------------------------------------------------------------

    async def stt_socket(self, socket: WebSocket) -> None:
        await self._serve(socket, "stt", self.stt, self._recognise)

    async def tts_socket(self, socket: WebSocket) -> None:
        await self._serve(socket, "tts", self.tts, self._speak)

    async def _recognise(self, socket: WebSocket, stt: STTProvider[Any]) -> None:
        query = socket.query_params
        model = query.get("model", "ink-whisper")
        if model not in STREAMING_STT_MODELS:
            raise InvalidRequest(
                f"Invalid model {model!r} (accepted: {', '.join(STREAMING_STT_MODELS)})", provider=PROVIDER, code=400
            )
        async with stt.stream(format=STTSession.audio_format(query)) as stream:
            await STTSession(socket, stream, query.get("language", "en")).run()

    async def _speak(self, socket: WebSocket, tts: TTSProvider[Any]) -> None:
        await TTSSession(socket, tts, self.voices).run()

    async def _serve(
        self, socket: WebSocket, kind: str, backend: Any, handler: Callable[[WebSocket, Any], Awaitable[None]]
    ) -> None:
        """Authenticate and accept ``socket``, then run ``handler``; its failure becomes an ``error`` and a close."""
        try:
            if backend is None:
                raise AuthFailure(f"this server has no {kind} backend", 404)
            self.keys.check(socket.headers, socket.query_params, kind=kind)
        except AuthFailure as refused:
            await _deny(socket, Failure(refused.status, "unauthorized", refused.message))
            return
        await socket.accept()
        try:
            await handler(socket, backend)
        except WebSocketDisconnect:
            return
        except SpeechBridgeError as error:
            failure = failure_of(error)
            with contextlib.suppress(Exception):
                await socket.send_json(
                    server_error(failure.message, failure.status, title=failure.title, error_code=failure.error_code)
                )
                await socket.close(1008 if failure.status < 500 else 1011)
            return
        with contextlib.suppress(Exception):
            await socket.close()


async def _deny(socket: WebSocket, failure: Failure) -> None:
    """Refuse a handshake with ``failure``'s HTTP status when the server can, else close it (HTTP 403)."""
    if "websocket.http.response" in socket.scope.get("extensions", {}):
        await socket.send_denial_response(JSONResponse(failure.to_json(), status_code=failure.status))
    else:
        await socket.close(1008)


def _key_of(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    return headers.get("x-api-key") or query.get("api_key")


def make_app(
    stt: STTProvider[Any] | None,
    tts: TTSProvider[Any] | None,
    *,
    api_keys: Collection[str] | None = None,
    voices: Mapping[str, str | None] | None = None,
) -> Starlette:
    """A wire-compatible Cartesia server (ASGI) whose speech is done by ``stt`` and ``tts``.

    ``api_keys``: the keys accepted (None: any non-empty key). ``voices``: Cartesia voice id -> backend voice (None:
    the backend's default); by default the backend's voices and Cartesia's example voice id.
    """
    front = CartesiaFront(stt, tts, keys=KeyRing(api_keys), voices=VoiceCatalog(tts, voices))
    routes = [
        Route(STT_BATCH_PATH, front.transcribe, methods=["POST"]),
        Route(TTS_BYTES_PATH, front.tts_bytes, methods=["POST"]),
        Route(TTS_SSE_PATH, front.tts_sse, methods=["POST"]),
        Route(TOKEN_PATH, front.access_token, methods=["POST"]),
        Route("/voices", front.list_voices, methods=["GET"]),
        Route("/voices/", front.list_voices, methods=["GET"]),
        WebSocketRoute(STT_WS_PATH, front.stt_socket),
        WebSocketRoute(TTS_WS_PATH, front.tts_socket),
    ]
    app = Starlette(routes=routes, max_body_size=MAX_BODY_BYTES)
    app.state.front = front
    return app
