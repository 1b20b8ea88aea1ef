"""What the ElevenLabs STT and TTS providers share: credentials and one HTTP client."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import attrs
import httpx

from speechbridge.errors import ConfigError
from speechbridge.provider import Provider, Secret
from speechbridge.transports import http_client

from .protocol import PROVIDER

__all__ = ["Credentials", "ElevenLabsClient", "TokenSource"]

TokenSource = Callable[[], "Awaitable[str] | str"]
"""Mints a fresh single-use token (e.g. ``account.create_token``); called once per request or socket."""


@attrs.frozen
class Credentials:
    """An API key (``xi-api-key`` header) or a single-use token (a query parameter).

    ElevenLabs consumes a single-use token on use: a fixed ``token`` serves one request; pass a :data:`TokenSource` for
    more. The token goes in ``?token=`` for STT and ``?single_use_token=`` for the TTS sockets.
    """

    api_key: Secret | None = None
    token: Secret | TokenSource | None = None

    def __attrs_post_init__(self) -> None:
        if self.api_key is None and self.token is None:
            raise ConfigError(
                "no API key or token (set ELEVENLABS_API_KEY, or pass api_key= or token=)", provider=PROVIDER
            )

    async def authenticate(
        self, url: str, *, token_param: str = "token"
    ) -> tuple[str, dict[str, str], tuple[str, ...]]:
        """The URL, headers and secrets (to scrub from errors) of one request or socket."""
        if self.api_key is not None and self.token is None:
            return url, {"xi-api-key": self.api_key.value}, (self.api_key.value,)
        token = self.token
        if not isinstance(token, Secret):
            assert token is not None
            minted = token()
            value = await minted if inspect.isawaitable(minted) else minted
            if not isinstance(value, str) or not value:
                raise ConfigError("the token source returned no token", provider=PROVIDER)
            token = Secret(value)
        parts = urlsplit(url)
        query = "&".join(filter(None, (parts.query, urlencode({token_param: token.value}))))
        secrets = (token.value,) + ((self.api_key.value,) if self.api_key is not None else ())
        return urlunsplit(parts._replace(query=query)), {}, secrets


class ElevenLabsClient(Provider[Any]):
    """Authentication by ``api_key`` or a single-use ``token`` (a string, or a callable minting one per use)."""

    api_key_env = "ELEVENLABS_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        token: str | Secret | TokenSource | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key=api_key, **options)
        self._token: Secret | TokenSource | None = Secret(token) if isinstance(token, str) else token
        self._http: httpx.AsyncClient | None = None

    def credentials(self) -> Credentials:
        """The key or token requests authenticate with (:class:`ConfigError` when there is neither)."""
        if self._token is not None:
            return Credentials(api_key=self._api_key, token=self._token)
        return Credentials(api_key=self._require_api_key())

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client(timeout_s=self.settings.timeout_s, reliability=self.reliability)
        return self._http

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
