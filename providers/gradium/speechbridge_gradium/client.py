"""What the Gradium STT and TTS providers share: credentials, pooled sockets and one HTTP client."""

from __future__ import annotations

from typing import Any

import httpx

from speechbridge.provider import Provider, Secret
from speechbridge.transports import http_client

from .connection import ConnectionPool, Credentials, TokenSource

__all__ = ["GradiumClient"]


class GradiumClient(Provider[Any]):
    """Authentication by ``api_key`` (``x-api-key``) or a browser ``token`` (``?token=``, WebSockets only).

    Gradium tokens are single-use, so a fixed token serves one connection; pass a callable (sync or async) that
    mints a fresh one per connection for more (minting them, e.g. with ``account.create_token``, is the caller's job).
    """

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        token: str | Secret | TokenSource | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key=api_key, **options)
        self._token: Secret | TokenSource | None = Secret(token) if isinstance(token, str) else token
        self._pool: ConnectionPool | None = None
        self._http: httpx.AsyncClient | None = None

    def credentials(self) -> Credentials:
        """The key or token requests authenticate with (:class:`ConfigError` when there is neither)."""
        if self._token is not None:
            return Credentials(api_key=self._api_key, token=self._token)
        return Credentials(api_key=self._require_api_key())

    @property
    def pool(self) -> ConnectionPool:
        """The sockets of this provider's streams."""
        if self._pool is None:
            self._pool = ConnectionPool(self.credentials(), dead_peer_timeout_s=self.reliability.dead_peer_timeout_s)
        return self._pool

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client(timeout_s=self.settings.timeout_s, reliability=self.reliability)
        return self._http

    async def aclose(self) -> None:
        pool, http = self._pool, self._http
        self._pool = self._http = None
        if pool is not None:
            await pool.aclose()
        if http is not None:
            await http.aclose()
