"""Who may use an ElevenLabs front: API keys in ``xi-api-key`` (or the TTS BOS), and single-use tokens."""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection
from typing import Final

from ..protocol import TOKEN_TYPES

__all__ = ["KeyRing", "Refused"]

TOKEN_QUERY: Final = ("token", "single_use_token")


class Refused(Exception):
    """The credentials were missing or wrong: ``status`` is ElevenLabs' ``detail.status``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class KeyRing:
    """Checks keys (any non-empty key when ``api_keys`` is None) and mints and redeems single-use tokens.

    A token is valid for ``token_ttl_s``, for the kind of use it was made for, and once.
    """

    def __init__(self, api_keys: Collection[str] | None = None, *, token_ttl_s: float = 900.0) -> None:
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.token_ttl_s = token_ttl_s
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (token_type, monotonic expiry)

    def check_key(self, key: str | None) -> None:
        if not key:
            raise Refused("missing_api_key", "No API key was provided: send it in the 'xi-api-key' header")
        if self.api_keys is not None and key not in self.api_keys:
            raise Refused("invalid_api_key", "Invalid API key")

    def check(self, key: str | None, token: str | None, token_type: str) -> None:
        """A request's credentials: a token (consumed) or a key."""
        if token is not None:
            kind, expiry = self._tokens.pop(token, ("", 0.0))
            if kind != token_type or expiry <= time.monotonic():
                raise Refused(
                    "invalid_token", f"the single-use token is invalid, expired, used or not for {token_type}"
                )
            return
        self.check_key(key)

    def mint(self, key: str | None, token_type: str) -> str:
        self.check_key(key)
        if token_type not in TOKEN_TYPES:
            raise Refused("invalid_request", f"unknown token type {token_type!r} (accepted: {', '.join(TOKEN_TYPES)})")
        now = time.monotonic()
        self._tokens = {token: entry for token, entry in self._tokens.items() if entry[1] > now}
        token = "sutkn_" + secrets.token_urlsafe(24)
        self._tokens[token] = (token_type, now + self.token_ttl_s)
        return token
