"""Who may use a Deepgram front: API keys (``Token``), and temporary grant tokens (``Bearer``) it minted.

Browsers, which cannot set headers, pass the same credentials as WebSocket subprotocols (``token, KEY`` or
``bearer, JWT``); the scheme is echoed back as the accepted subprotocol.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Mapping
from typing import Final

import attrs

__all__ = ["Denied", "KeyRing", "Presented", "presented_credentials"]

SCHEMES: Final = ("token", "bearer")


@attrs.frozen
class Presented:
    """Credentials as the client sent them; ``subprotocol`` is set when they came as WebSocket subprotocols."""

    scheme: str | None
    value: str | None
    subprotocol: str | None = None


class Denied(Exception):
    """The credentials were refused: answer 401 with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def presented_credentials(headers: Mapping[str, str]) -> Presented:
    """The ``Authorization`` header, else the ``Sec-WebSocket-Protocol`` pair."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        return Presented(scheme.lower(), value.strip() or None)
    offered = [part.strip() for part in headers.get("sec-websocket-protocol", "").split(",") if part.strip()]
    if len(offered) == 2 and offered[0].lower() in SCHEMES:
        return Presented(offered[0].lower(), offered[1], subprotocol=offered[0])
    return Presented(None, None)


class KeyRing:
    """Checks keys (any non-empty key when ``api_keys`` is None) and mints and checks grant tokens.

    A grant token is good for any number of requests until it expires.
    """

    def __init__(self, api_keys: Collection[str] | None = None) -> None:
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry

    def check(self, presented: Presented, *, key_only: bool = False) -> None:
        if presented.scheme is None or not presented.value:
            raise Denied("Authorization header or token subprotocol missing")
        if presented.scheme == "token":
            if self.api_keys is not None and presented.value not in self.api_keys:
                raise Denied("Invalid credentials.")
            return
        if presented.scheme != "bearer" or key_only:
            raise Denied(
                "a grant needs an API key: Authorization: Token <key>"
                if key_only
                else f"unknown authorization scheme {presented.scheme!r} (accepted: Token, Bearer)"
            )
        expiry = self._tokens.get(presented.value)
        if expiry is None or expiry < time.monotonic():
            raise Denied("the access token is invalid or expired")

    def mint(self, ttl_s: int) -> str:
        now = time.monotonic()
        self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = "dgt." + secrets.token_urlsafe(32)
        self._tokens[token] = now + ttl_s
        return token
