"""The Cartesia account over REST: access tokens and the voice list.

An access token lets a browser (or any client that must not hold the key) use Cartesia for a while::

    token = await create_token(os.environ["CARTESIA_API_KEY"], tts=True, stt=True, expires_in=60)
    tts = CartesiaTTS(token=token.token)          # or: wss://api.cartesia.ai/tts/websocket?access_token=...
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import httpx

from speechbridge.errors import ConfigError, ProtocolError
from speechbridge.provider import Secret
from speechbridge.transports import http_client, send_request
from speechbridge.tts import Voice

from .client import Credentials
from .protocol import API_URL, API_VERSION, PROVIDER, TOKEN_PATH, error_from_rest

__all__ = ["MAX_EXPIRES_IN", "VOICES_PATH", "AccessToken", "create_token", "list_voices"]

MAX_EXPIRES_IN: Final = 3600
VOICES_PATH: Final = "/voices"
DEFAULT_TIMEOUT_S: Final = 10.0


@attrs.frozen
class AccessToken:
    """A short-lived token (``repr`` never shows it): ``Authorization: Bearer`` or ``?access_token=``."""

    token: str = attrs.field(repr=False)
    expires_in: int
    stt: bool
    tts: bool


async def create_token(
    api_key: str | Secret,
    *,
    tts: bool = True,
    stt: bool = True,
    expires_in: int = 60,
    base_url: str = API_URL,
    version: str = API_VERSION,
    client: httpx.AsyncClient | None = None,
) -> AccessToken:
    """Mint an access token granting ``tts`` and/or ``stt`` for ``expires_in`` seconds (1 to 3600)."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ConfigError(
            f"expires_in={expires_in!r} is not accepted (accepted: 1 to {MAX_EXPIRES_IN} seconds)", provider=PROVIDER
        )
    if not (tts or stt):
        raise ConfigError("a token must grant tts or stt (or both)", provider=PROVIDER)
    credentials = Credentials(api_key=Secret(api_key) if isinstance(api_key, str) else api_key)
    body = {"grants": {"tts": tts, "stt": stt, "agent": False}, "expires_in": expires_in}
    owned = client is None
    http = client or http_client(timeout_s=DEFAULT_TIMEOUT_S)
    try:
        response = await send_request(
            http,
            "POST",
            base_url.rstrip("/") + TOKEN_PATH,
            provider=PROVIDER,
            mapper=error_from_rest,
            secrets=credentials.secrets,
            headers=credentials.headers(version),
            json=body,
        )
    finally:
        if owned:
            await http.aclose()
    answer = _json(response)
    token = answer.get("token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise ProtocolError("the /access-token answer has no 'token'", provider=PROVIDER)
    return AccessToken(token, expires_in, stt, tts)


async def list_voices(credentials: Credentials, *, settings: Any, client: httpx.AsyncClient) -> list[Voice]:
    """The voices the account may use (``GET /voices``; a paged ``{"data": [...]}`` or a bare list)."""
    response = await send_request(
        client,
        "GET",
        settings.api_url + VOICES_PATH,
        provider=PROVIDER,
        mapper=error_from_rest,
        secrets=credentials.secrets,
        headers=credentials.headers(settings.version),
        timeout=settings.timeout_s,
    )
    answer = _json(response)
    entries = answer.get("data") if isinstance(answer, dict) else answer
    if not isinstance(entries, list):
        raise ProtocolError("the /voices answer is not a list of voices", provider=PROVIDER)
    voices = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ProtocolError(f"a voice has no 'id': {str(entry)[:80]}", provider=PROVIDER)
        voices.append(
            Voice(entry["id"], str(entry.get("name") or entry["id"]), entry.get("language"), entry.get("description"))
        )
    return voices


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProtocolError(f"Cartesia's answer is not JSON: {response.text[:80]!r}", provider=PROVIDER) from None
