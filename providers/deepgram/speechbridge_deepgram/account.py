"""Deepgram temporary tokens: ``POST /v1/auth/grant`` turns an API key into a short-lived JWT.

A grant token authenticates as ``Authorization: Bearer`` (pass it as ``access_token=`` to the providers), or in a
browser as the WebSocket subprotocols ``["bearer", token]``. It works until it expires, on any number of requests::

    grant = await create_token(os.environ["DEEPGRAM_API_KEY"], ttl_seconds=60)
    stt = DeepgramSTT(access_token=grant.token)
"""

from __future__ import annotations

import datetime
from typing import Final

import attrs

from speechbridge.errors import ConfigError, ProtocolError
from speechbridge.provider import Secret
from speechbridge.transports import http_client, send_request

from .protocol import API_URL, GRANT_PATH, PROVIDER, error_from_rest

__all__ = ["GrantToken", "create_token"]

DEFAULT_TIMEOUT_S: Final = 10.0
MAX_TTL_S: Final = 3600


@attrs.frozen
class GrantToken:
    """A temporary token; ``repr`` never shows it."""

    token: str = attrs.field(repr=False)
    expires_at: datetime.datetime

    def subprotocols(self) -> list[str]:
        """The WebSocket subprotocols a browser authenticates with."""
        return ["bearer", self.token]


async def create_token(
    api_key: str | Secret, *, ttl_seconds: int = 30, base_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> GrantToken:
    """Mint a token valid for ``ttl_seconds`` (1 to 3600) with ``api_key`` (a Member key or higher)."""
    key = api_key.value if isinstance(api_key, Secret) else api_key
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the Deepgram API key is empty (set DEEPGRAM_API_KEY)", provider=PROVIDER)
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= MAX_TTL_S:
        raise ConfigError(
            f"ttl_seconds must be an integer from 1 to {MAX_TTL_S}, not {ttl_seconds!r}", provider=PROVIDER
        )
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must be an http:// or https:// URL, not {base_url!r}", provider=PROVIDER)
    url = (base_url or API_URL).rstrip("/") + GRANT_PATH
    async with http_client(timeout_s=timeout_s) as client:
        response = await send_request(
            client,
            "POST",
            url,
            provider=PROVIDER,
            mapper=error_from_rest,
            secrets=(key,),
            json={"ttl_seconds": ttl_seconds},
            headers={"Authorization": f"Token {key}"},
        )
    try:
        body = response.json()
        token, expires_in = body["access_token"], body.get("expires_in", ttl_seconds)
    except (ValueError, KeyError, TypeError):
        raise ProtocolError("the grant answer has no access_token", provider=PROVIDER) from None
    if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
        raise ProtocolError("the grant answer's access_token or expires_in is malformed", provider=PROVIDER)
    expires_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in)
    return GrantToken(token, expires_at)
