"""Who may use a Gradium front: API keys in ``x-api-key``, and single-use browser tokens in ``?token=``."""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Collection
from typing import Final

from .failures import POLICY, RequestError

__all__ = ["KeyRing"]

NO_AUTH: Final = "No authentication provided"
BAD_KEY: Final = "API key is revoked or expired"
BAD_TOKEN: Final = "token is invalid, expired or already used"


class KeyRing:
    """Checks keys (any non-empty key when ``api_keys`` is None) and mints and redeems browser tokens.

    A token is valid for ``token_ttl_s`` and for one WebSocket connection: it is consumed when checked.
    """

    def __init__(self, api_keys: Collection[str] | None = None, *, token_ttl_s: float = 300.0) -> None:
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.token_ttl_s = token_ttl_s
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry

    def check_key(self, key: str | None) -> None:
        if not key:
            raise RequestError(POLICY, NO_AUTH)
        if self.api_keys is not None and key not in self.api_keys:
            raise RequestError(POLICY, BAD_KEY)

    def check(self, key: str | None, token: str | None) -> None:
        """A WebSocket's credentials: a token (consumed) or a key."""
        if token is not None:
            if not self.redeem(token):
                raise RequestError(POLICY, BAD_TOKEN)
            return
        self.check_key(key)

    def mint(self, key: str | None) -> tuple[str, str]:
        """A fresh token for a valid key, and its expiry as ISO-8601 UTC."""
        self.check_key(key)
        now = time.monotonic()
        self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = "gdt_" + secrets.token_urlsafe(24)
        self._tokens[token] = now + self.token_ttl_s
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.token_ttl_s)
        return token, expires.strftime("%Y-%m-%dT%H:%M:%SZ")

    def redeem(self, token: str) -> bool:
        expiry = self._tokens.pop(token, None)
        return expiry is not None and expiry > time.monotonic()
