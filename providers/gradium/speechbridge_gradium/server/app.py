"""The Starlette app of a Gradium front: routes, authentication and the REST endpoints."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from speechbridge.audio import wav_header
from speechbridge.errors import SpeechBridgeError
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider
from speechbridge.turns import TurnCompletion

from ..protocol import (
    CREDITS_PATH,
    REST_CONTENT_TYPES,
    STT_POST_PATH,
    STT_WS_PATH,
    TOKEN_PATH,
    TTS_POST_PATH,
    TTS_WS_PATH,
    AudioIn,
    EndOfStreamIn,
    Setup,
    TextIn,
    read_json_config,
    server_error,
)
from .auth import KeyRing
from .channels import DROPPED, NDJSONChannel, WebSocketChannel
from .failures import POLICY, RequestError
from .faults import Faults
from .requests import Channel, Request
from .stt import STTRequest
from .tts import TTSRequest
from .voices import VoiceCatalog

__all__ = ["DEFAULT_CREDITS", "MAX_BODY_BYTES", "GradiumFront", "make_app"]

DEFAULT_CREDITS: Final = {
    "remaining_credits": 1_000_000,
    "allocated_credits": 1_000_000,
    "billing_period": "monthly",
    "next_rollover_date": None,
    "plan_name": "speechbridge",
}
REST_CHUNK_BYTES: Final = 32768
NDJSON: Final = "application/x-ndjson"
AUDIO_MEDIA_TYPES: Final = {"wav": "audio/wav", "opus": "audio/ogg", "ulaw_8000": "audio/basic",
                            "mulaw_8000": "audio/basic", "alaw_8000": "audio/x-alaw-basic"}  # fmt: skip
PREFIXES: Final = ("/api", "")
MAX_BODY_BYTES: Final = 128 * 1024 * 1024
"""The largest request body the front reads (HTTP 413 above): about an hour of 16 kHz WAV, two of MP3."""


class GradiumFront:
    """What the routes share: the backends, the keys, the voices, the credits and the faults to inject."""

    def __init__(
        self,
        stt: STTProvider[Any] | None,
        tts: TTSProvider[Any] | None,
        *,
        keys: KeyRing,
        voices: VoiceCatalog,
        credits: Mapping[str, Any],
        faults: Faults | None,
        turn_completion: TurnCompletion | None = None,
    ) -> None:
        self.stt, self.tts = stt, tts
        self.keys, self.voices, self.credits = keys, voices, dict(credits)
        self.faults = faults
        self.turn_completion = turn_completion
        self.connections = 0

    def next_faults(self) -> Faults | None:
        """The faults for a new connection: all of them, or none once ``faults.connections`` have had theirs."""
        self.connections += 1
        if self.faults is None or (self.faults.connections is not None and self.connections > self.faults.connections):
            return None
        return self.faults

    def make_request(self, channel: Channel, setup: Setup, default_kind: str | None) -> Request:
        """The request a setup asks for: STT or TTS by its fields, or by the path when it names neither."""
        ambiguous = setup.input_format is setup.output_format is setup.voice_id is setup.voice is None
        kind = (default_kind or setup.kind) if ambiguous else setup.kind
        if kind == "tts":
            if self.tts is None:
                raise RequestError(POLICY, "this server has no text-to-speech backend")
            return TTSRequest(channel, setup, self.tts, self.voices)
        if self.stt is None:
            raise RequestError(POLICY, "this server has no speech-to-text backend")
        return STTRequest(channel, setup, self.stt, self.turn_completion)

    # --- WebSocket ------------------------------------------------------------------------------------------------

    def websocket_endpoint(self, default_kind: str | None) -> Any:
        async def endpoint(websocket: WebSocket) -> None:
            await websocket.accept()
            faults = self.next_faults()
            try:
                self.keys.check(websocket.headers.get("x-api-key"), websocket.query_params.get("token"))
            except RequestError as error:
                await websocket.send_text(json.dumps(server_error(error.message, error.code)))
                await websocket.close(error.code, error.message)
                return
            channel = WebSocketChannel(
                websocket, lambda channel, setup: self.make_request(channel, setup, default_kind), faults
            )
            await channel.serve()

        return endpoint

    # --- REST -----------------------------------------------------------------------------------------------------

    async def post_stt(self, http: HTTPRequest) -> Response | NDJSONResponse:
        try:
            self.keys.check_key(http.headers.get("x-api-key"))
            input_format = http.query_params.get("input_format") or _format_of(http.headers.get("content-type"))
            setup = Setup(
                kind="stt",
                model_name=http.query_params.get("model") or http.query_params.get("model_name") or "default",
                input_format=input_format,
                json_config=read_json_config(http.query_params.get("json_config")),
            )
        except (RequestError, SpeechBridgeError) as error:
            return _rest_error(RequestError.from_error(error))
        body = await http.body()
        messages = [AudioIn(body[start : start + REST_CHUNK_BYTES]) for start in range(0, len(body), REST_CHUNK_BYTES)]
        return await self._run_rest(setup, [*messages, EndOfStreamIn()], only_audio=None)

    async def post_tts(self, http: HTTPRequest) -> Response | NDJSONResponse:
        try:
            self.keys.check_key(http.headers.get("x-api-key"))
            body = await _json_body(http)
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise RequestError(POLICY, "'text' must be a non-empty string")
            setup = Setup(
                kind="tts",
                model_name=_optional_str(body, "model_name") or "default",
                output_format=_optional_str(body, "output_format") or "wav",
                voice_id=_optional_str(body, "voice_id"),
                voice=_optional_str(body, "voice"),
                pronunciation_id=_optional_str(body, "pronunciation_id"),
                json_config=read_json_config(body.get("json_config", http.query_params.get("json_config"))),
            )
        except (RequestError, SpeechBridgeError) as error:
            return _rest_error(RequestError.from_error(error))
        only_audio = setup.output_format if body.get("only_audio") is True else None
        return await self._run_rest(setup, [TextIn(text), EndOfStreamIn()], only_audio=only_audio)

    async def _run_rest(
        self, setup: Setup, messages: list[Any], *, only_audio: str | None
    ) -> Response | NDJSONResponse:
        faults = self.next_faults()
        if faults is not None and faults.reject_setup is not None:
            return _rest_error(RequestError(faults.reject_setup, faults.error_message))
        channel = NDJSONChannel(faults)
        try:
            request = self.make_request(channel, setup, setup.kind)
        except RequestError as error:
            return _rest_error(error)
        try:
            await request.open()
        except Exception as error:
            await request.cancel()
            return _rest_error(RequestError.from_error(error))
        for message in messages:
            request.put(message)
        request.start()
        if only_audio is not None:
            return await _collect_audio(channel, request, only_audio)
        return NDJSONResponse(channel, request)

    async def token(self, http: HTTPRequest) -> Response:
        try:
            token, expires_at = self.keys.mint(http.headers.get("x-api-key"))
        except RequestError as error:
            return JSONResponse({"detail": error.message}, status_code=401)
        return JSONResponse({"token": token, "expires_at": expires_at})

    async def credits_endpoint(self, http: HTTPRequest) -> Response:
        try:
            self.keys.check_key(http.headers.get("x-api-key"))
        except RequestError as error:
            return JSONResponse({"detail": error.message}, status_code=401)
        return JSONResponse(self.credits)

    async def list_voices(self, http: HTTPRequest) -> Response:
        try:
            self.keys.check_key(http.headers.get("x-api-key"))
            skip = int(http.query_params.get("skip") or 0)
            limit = int(http.query_params.get("limit") or 0)
        except RequestError as error:
            return JSONResponse({"detail": error.message}, status_code=401)
        except ValueError:
            return JSONResponse({"detail": "skip and limit must be whole numbers"}, status_code=422)
        voices = (await self.voices.entries())[max(0, skip) :]
        if limit > 0:
            voices = voices[:limit]
        return JSONResponse([voice.to_json() for voice in voices])

    async def get_voice(self, http: HTTPRequest) -> Response:
        try:
            self.keys.check_key(http.headers.get("x-api-key"))
        except RequestError as error:
            return JSONResponse({"detail": error.message}, status_code=401)
        voice = await self.voices.get(http.path_params["uid"])
        if voice is None:
            return JSONResponse({"detail": f"voice {http.path_params['uid']!r} not found"}, status_code=404)
        return JSONResponse(voice.to_json())

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in PREFIXES:
            routes += [
                WebSocketRoute(prefix + STT_WS_PATH, self.websocket_endpoint("stt")),
                WebSocketRoute(prefix + TTS_WS_PATH, self.websocket_endpoint("tts")),
                Route(prefix + STT_POST_PATH, self.post_stt, methods=["POST"]),
                Route(prefix + TTS_POST_PATH, self.post_tts, methods=["POST"]),
                Route(prefix + TOKEN_PATH, self.token, methods=["GET"]),
                Route(prefix + CREDITS_PATH, self.credits_endpoint, methods=["GET"]),
                Route(prefix + "/voices/", self.list_voices, methods=["GET"]),
                Route(prefix + "/voices/{uid}", self.get_voice, methods=["GET"]),
            ]
        routes.append(WebSocketRoute("/{path:path}", self.websocket_endpoint(None)))
        return routes


class NDJSONResponse:
    """A streamed NDJSON body fed by a channel; a dropping fault ends it without finishing the HTTP response."""

    def __init__(self, channel: NDJSONChannel, request: Request) -> None:
        self.channel, self.request = channel, request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", NDJSON.encode())]})
            async for line in self.channel.lines():
                if line is DROPPED:
                    return
                assert isinstance(line, bytes)
                await send({"type": "http.response.body", "body": line, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.request.cancel()


async def _collect_audio(channel: NDJSONChannel, request: Request, output_format: str) -> Response:
    """The whole audio of a TTS request (``only_audio``); a failure before the end is an HTTP 500."""
    audio = bytearray()
    try:
        async for line in channel.lines():
            if line is DROPPED:
                return _rest_error(RequestError(1011, "the connection was dropped"))
            assert isinstance(line, bytes)
            message = json.loads(line)
            if message["type"] == "error":
                return _rest_error(RequestError(message.get("code") or 1011, message["message"]))
            if message["type"] == "audio":
                audio += base64.b64decode(message["audio"])
    finally:
        await request.cancel()
    if output_format == "wav" and len(audio) >= 44:
        rate = int.from_bytes(audio[24:28], "little")
        audio[:44] = wav_header(rate, len(audio) - 44)
    return Response(bytes(audio), media_type=AUDIO_MEDIA_TYPES.get(output_format, "audio/pcm"))


def _format_of(content_type: str | None) -> str:
    if not content_type:
        return "wav"
    media = content_type.split(";")[0].strip().lower()
    if media not in REST_CONTENT_TYPES:
        raise RequestError(POLICY, f"unsupported content type for SST {media!r}")
    return REST_CONTENT_TYPES[media]


async def _json_body(http: HTTPRequest) -> dict[str, Any]:
    try:
        body = json.loads(await http.body())
    except ValueError:
        raise RequestError(POLICY, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError(POLICY, "the body must be a JSON object")
    return body


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(POLICY, f"{key!r} must be a string, not {value!r}")
    return value


def _rest_error(error: RequestError) -> Response:
    """Gradium's pre-stream REST error: HTTP 500, ``error from server <code>: <reason>``."""
    return PlainTextResponse(f"error from server {error.code}: {error.message}", status_code=500)


def make_app(
    stt: STTProvider[Any] | None,
    tts: TTSProvider[Any] | None,
    *,
    api_keys: Collection[str] | None = None,
    faults: Faults | None = None,
    voices: Mapping[str, str | None] | None = None,
    credits: Mapping[str, Any] | None = None,
    token_ttl_s: float = 300.0,
    turn_completion: TurnCompletion | None = None,
) -> Starlette:
    """A wire-compatible Gradium server (ASGI) whose speech is done by ``stt`` and ``tts``.

    ``api_keys``: the keys accepted in ``x-api-key`` (None: any non-empty key). ``voices``: Gradium voice id ->
    backend voice (None: the backend's default voice); by default the backend's voices and the client libraries'
    default voice ids. ``credits``: what ``GET /usages/credits`` answers. ``faults``: what to break, for tests.
    ``turn_completion``: a model of whether the speaker has finished (such as Smart Turn:
    ``speechbridge_local.smart_turn.SmartTurn.load().completion``) that makes the ``step`` predictions semantic
    (:mod:`.vad`); without one they follow the silence alone.
    Routes are served under ``/api`` and without it; a WebSocket on any other path is dispatched on its setup.
    """
    front = GradiumFront(
        stt,
        tts,
        keys=KeyRing(api_keys, token_ttl_s=token_ttl_s),
        voices=VoiceCatalog(tts, voices),
        credits=DEFAULT_CREDITS if credits is None else credits,
        faults=faults,
        turn_completion=turn_completion,
    )
    app = Starlette(routes=front.routes(), max_body_size=MAX_BODY_BYTES)
    app.state.front = front
    return app
