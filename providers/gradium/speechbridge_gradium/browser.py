"""A token route for web apps: each signed-in browser gets one fresh Gradium token per WebSocket connection.

:class:`TokenEndpoint` is a plain ASGI app, so it mounts in Starlette, FastAPI or any ASGI framework. It asks the
app's ``authenticate(scope)`` whether the request comes from a signed-in user (401 when not), mints a new single-use
token with :func:`~speechbridge_gradium.account.create_token`, and answers::

    {"token": "...", "expires_at": "2026-05-23T12:00:00+00:00", "url": "wss://api.gradium.ai/api/speech/tts?token=..."}

``?speech=asr`` asks for the recognition socket's URL instead of the synthesis one. Gradium consumes a token when it
verifies it, so a browser fetches a new one before **every** WebSocket it opens, reconnects included. The API key
stays on the server; answers are marked ``Cache-Control: no-store``, and tokens are never logged.

A runnable app (``pip install speechbridge-gradium[server]``, then ``GRADIUM_API_KEY=... uvicorn app:app``)::

    import os

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from speechbridge_gradium.browser import TokenEndpoint

    SESSIONS = {"c2Vzc2lvbi1vZi1hbGljZQ": "alice"}  # your app's real sign-in goes here

    async def signed_in(scope):
        return Request(scope).cookies.get("session") in SESSIONS

    app = Starlette(routes=[Route("/gradium-token", TokenEndpoint(os.environ["GRADIUM_API_KEY"], signed_in))])

and in the page, once per connection::

    const {url} = await (await fetch("/gradium-token?speech=tts")).json();
    const socket = new WebSocket(url);   // on close, fetch a new token before reconnecting
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qs

import httpx

from speechbridge.errors import ConfigError, SpeechBridgeError
from speechbridge.provider import Secret

from .account import AnySettings, api_headers, create_token
from .protocol import PROVIDER, STT_WS_PATH, TTS_WS_PATH
from .settings import GradiumTTSSettings

__all__ = ["Authenticate", "TokenEndpoint"]

log = logging.getLogger("speechbridge_gradium.browser")

Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send: TypeAlias = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Authenticate: TypeAlias = Callable[[Scope], Awaitable[bool]]
"""The app's check of the request (an ASGI ``scope``): True when a signed-in user asks."""

WS_PATHS: Final = {"tts": TTS_WS_PATH, "asr": STT_WS_PATH}
METHODS: Final = ("GET", "POST")


class TokenEndpoint:
    """ASGI app answering each authenticated request with a fresh Gradium browser token and the WebSocket URL.

    ``settings`` (or ``base_url``) says which Gradium the browser will connect to; ``speech`` is the socket whose URL
    is returned when the request does not ask with ``?speech=asr`` or ``?speech=tts``. Pass an ``httpx.AsyncClient``
    as ``client`` to reuse its connections (the endpoint does not close it).
    """

    def __init__(
        self,
        api_key: str | Secret,
        authenticate: Authenticate,
        *,
        settings: AnySettings | None = None,
        base_url: str | None = None,
        speech: str = "tts",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        api_headers(api_key)
        if speech not in WS_PATHS:
            raise ConfigError(f"speech={speech!r} is not accepted", allowed=WS_PATHS, provider=PROVIDER)
        if settings is not None and base_url is not None:
            raise ConfigError("give settings or base_url, not both", provider=PROVIDER)
        self._api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self._authenticate = authenticate
        self._settings = settings if settings is not None else GradiumTTSSettings(base_url=base_url)
        self._speech = speech
        self._client = client

    def __repr__(self) -> str:
        return f"TokenEndpoint({self._settings.api_url!r}, speech={self._speech!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"TokenEndpoint serves HTTP requests, not {scope['type']}")
        if scope["method"] not in METHODS:
            await _answer(send, 405, {"error": "use GET or POST"}, [(b"allow", ", ".join(METHODS).encode())])
            return
        speech = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("speech", [self._speech])[-1]
        if speech not in WS_PATHS:
            await _answer(send, 400, {"error": f"speech must be one of {', '.join(WS_PATHS)}"})
            return
        if not await self._authenticate(scope):
            await _answer(send, 401, {"error": "sign in first"})
            return
        try:
            token = await create_token(self._api_key, settings=self._settings, client=self._client)
        except SpeechBridgeError as error:
            log.warning("could not create a Gradium browser token: %s", error)
            await _answer(send, 502, {"error": "could not create a speech token; try again"})
            return
        url = token.url(self._settings.ws_url + WS_PATHS[speech])
        await _answer(send, 200, {"token": token.token, "expires_at": token.expires_at.isoformat(), "url": url})


async def _answer(send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
