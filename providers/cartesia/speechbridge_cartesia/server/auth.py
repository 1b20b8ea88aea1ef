"""Who may use a Cartesia front: API keys (``Authorization: Bearer``, ``X-API-Key`` or ``?api_key=``) and access
tokens (``POST /access-token``; ``Authorization: Bearer`` or ``?access_token=``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Mapping
from typing import Final

import attrs

__all__ = ["AuthFailure", "Grant", "KeyRing"]

MAX_TOKEN_TTL_S: Final = 3600
TOKEN_PREFIX: Final = "cat_"


class AuthFailure(Exception):
    """The request's credentials are missing or refused; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@attrs.frozen
class Grant:
    """What an access token allows, and until when (monotonic seconds)."""

    stt: bool
    tts: bool
    expires_at: float


class KeyRing:
    """Checks keys (any non-empty key when ``api_keys`` is None) and mints and checks access tokens."""

    def __init__(self, api_keys: Collection[str] | None = None) -> None:
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self._tokens: dict[str, Grant] = {}

    def check_key(self, key: str | None) -> None:
        if not key:
            raise AuthFailure("No API key or access token provided")
        if self.api_keys is not None and key not in self.api_keys:
            raise AuthFailure("Invalid API key")

    def check(self, headers: Mapping[str, str], query: Mapping[str, str], *, kind: str | None = None) -> None:
        """A request's credentials: a token (valid, unexpired, granting ``kind``) or a key."""
        token = query.get("access_token")
        key = headers.get("x-api-key") or query.get("api_key")
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            value = bearer[7:].strip()
            if value.startswith(TOKEN_PREFIX):
                token = token or value
            else:
                key = key or value
        if token is not None:
            grant = self._tokens.get(token)
            if grant is None or grant.expires_at <= time.monotonic():
                raise AuthFailure("Invalid or expired access token")
            if kind is not None and not getattr(grant, kind):
                raise AuthFailure(f"The access token does not grant {kind}", 403)
            return
        self.check_key(key)

    def mint(self, *, stt: bool, tts: bool, expires_in: int) -> str:
        """A fresh access token (the caller checked the key)."""
        now = time.monotonic()
        self._tokens = {token: grant for token, grant in self._tokens.items() if grant.expires_at > now}
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        self._tokens[token] = Grant(stt, tts, now + expires_in)
        return token
