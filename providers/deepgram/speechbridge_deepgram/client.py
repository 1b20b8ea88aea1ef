"""What the Deepgram STT and TTS providers share: credentials, URLs and one HTTP client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from speechbridge.provider import Provider, Secret
from speechbridge.transports import http_client

__all__ = ["DeepgramClient"]


class DeepgramClient(Provider[Any]):
    """Authentication by ``api_key`` (``Authorization: Token``) or a temporary ``access_token`` from
    :func:`speechbridge_deepgram.account.create_token` (``Authorization: Bearer``)."""

    api_key_env = "DEEPGRAM_API_KEY"

    def __init__(
        self, *, api_key: str | Secret | None = None, access_token: str | Secret | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, **options)
        self._access_token = Secret(access_token) if isinstance(access_token, str) else access_token
        self._http: httpx.AsyncClient | None = None

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header (:class:`ConfigError` when there is neither key nor token)."""
        if self._access_token is not None:
            return {"Authorization": f"Bearer {self._access_token.value}"}
        return {"Authorization": f"Token {self._require_api_key().value}"}

    def secrets(self) -> tuple[str | None, ...]:
        """What must never appear in an error message."""
        return tuple(secret.value for secret in (self._api_key, self._access_token) if secret is not None)

    @staticmethod
    def url(base: str, path: str, query: list[tuple[str, str]]) -> str:
        return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client(
                timeout_s=self.settings.timeout_s,
                read_timeout_s=max(60.0, self.settings.timeout_s),
                reliability=self.reliability,
            )
        return self._http

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
