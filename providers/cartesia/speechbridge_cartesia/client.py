"""What the Cartesia STT and TTS providers share: credentials, the version header, one HTTP client, socket opening."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import attrs
import httpx

from speechbridge.errors import ConfigError, SpeechBridgeError
from speechbridge.provider import Provider, Secret
from speechbridge.transports import http_client
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error, connect_websocket

from .protocol import PROVIDER, error_from_rest

__all__ = ["CartesiaClient", "Credentials", "ended_error"]


def ended_error(socket: WebSocket, secrets: tuple[str, ...] = ()) -> SpeechBridgeError:
    """The typed error for a socket that closed (without an exception) while answers were still expected."""
    return closed_error(socket.closed or WebSocketClosed(None), provider=PROVIDER, secrets=secrets)


@attrs.frozen
class Credentials:
    """An API key or an access token (``POST /access-token``); both go as ``Authorization: Bearer`` over REST.

    On WebSockets a key goes in the headers and an access token as ``?access_token=``, as browsers send it.
    """

    api_key: Secret | None = None
    token: Secret | None = None

    def __attrs_post_init__(self) -> None:
        if self.api_key is None and self.token is None:
            raise ConfigError(
                "no API key or token (set CARTESIA_API_KEY, or pass api_key= or token=)", provider=PROVIDER
            )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to scrub from any server text shown in an error."""
        return tuple(secret.value for secret in (self.api_key, self.token) if secret is not None)

    def headers(self, version: str) -> dict[str, str]:
        """REST headers: the bearer credential and ``Cartesia-Version``."""
        credential = self.token if self.token is not None else self.api_key
        assert credential is not None
        return {"Authorization": f"Bearer {credential.value}", "Cartesia-Version": version}

    def websocket(self, url: str, query: Mapping[str, str], version: str) -> tuple[str, dict[str, str]]:
        """The URL and headers of one socket to ``url`` with ``query``."""
        if self.token is not None:
            full = {**query, "access_token": self.token.value, "cartesia_version": version}
            return f"{url}?{urlencode(full)}", {}
        return (f"{url}?{urlencode(query)}" if query else url), self.headers(version)


class CartesiaClient(Provider[Any]):
    """Authentication by ``api_key`` or by an access ``token`` minted with :func:`account.create_token`."""

    api_key_env = "CARTESIA_API_KEY"

    def __init__(
        self, *, api_key: str | Secret | None = None, token: str | Secret | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, **options)
        self._token = Secret(token) if isinstance(token, str) else token
        self._http: httpx.AsyncClient | None = None

    def credentials(self) -> Credentials:
        """The key or token requests authenticate with (:class:`ConfigError` when there is neither)."""
        if self._token is not None:
            return Credentials(token=self._token)
        return Credentials(api_key=self._require_api_key())

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client(timeout_s=self.settings.timeout_s, reliability=self.reliability)
        return self._http

    async def _connect(self, url: str, query: Mapping[str, str], credentials: Credentials, settings: Any) -> WebSocket:
        """A socket to ``url``; a refused handshake is the typed error of its status."""
        full_url, headers = credentials.websocket(url, query, settings.version)
        return await connect_websocket(
            full_url,
            provider=PROVIDER,
            headers=headers,
            open_timeout=settings.timeout_s,
            dead_peer_timeout_s=self.reliability.dead_peer_timeout_s,
            http_error=error_from_rest,
            secrets=credentials.secrets,
        )

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
