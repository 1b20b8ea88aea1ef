"""The Gradium account over REST: browser tokens, the voice list and the credit balance.

Each call takes the API key and where to reach Gradium (``settings`` of the backend, or a ``base_url``, or the default
host). Keys and tokens never appear in reprs, logs or errors::

    token = await create_token(os.environ["GRADIUM_API_KEY"])
    url = token.url("wss://api.gradium.ai/api/speech/tts")  # for one browser WebSocket, once
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final
from urllib.parse import urlencode

import attrs
import httpx

from speechbridge.errors import ConfigError, ProtocolError
from speechbridge.provider import Secret
from speechbridge.transports import http_client, send_request
from speechbridge.tts import Voice

from .connection import API_SOURCE
from .protocol import CREDITS_PATH, PROVIDER, TOKEN_PATH, VOICES_PATH, error_from_rest
from .settings import GradiumSTTSettings, GradiumTTSSettings

__all__ = ["BrowserToken", "Credits", "api_headers", "create_token", "credits", "list_voices"]

DEFAULT_TIMEOUT_S: Final = 10.0
AnySettings = GradiumSTTSettings | GradiumTTSSettings


@attrs.frozen
class BrowserToken:
    """A short-lived, single-use token for one browser WebSocket; ``repr`` never shows it.

    Gradium consumes the token when it verifies it, so a WebSocket that reconnects needs a fresh one.
    """

    token: str = attrs.field(repr=False)
    expires_at: datetime.datetime

    def url(self, ws_url: str) -> str:
        """``ws_url`` (e.g. ``wss://api.gradium.ai/api/speech/asr``) with this token as its ``?token=``."""
        joiner = "&" if "?" in ws_url else "?"
        return f"{ws_url}{joiner}{urlencode({'token': self.token})}"


@attrs.frozen
class Credits:
    """The credit balance of the key's organisation."""

    remaining: int
    allocated: int | None = None
    billing_period: str | None = None
    next_rollover_date: str | None = None
    plan_name: str | None = None


def api_headers(api_key: str | Secret) -> dict[str, str]:
    """The headers of an authenticated Gradium request."""
    key = api_key.value if isinstance(api_key, Secret) else api_key
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the Gradium API key is empty (set GRADIUM_API_KEY)", provider=PROVIDER)
    return {"x-api-key": key, "x-api-source": API_SOURCE}


def _api_url(settings: AnySettings | None, base_url: str | None) -> str:
    if settings is not None and base_url is not None:
        raise ConfigError("give settings or base_url, not both", provider=PROVIDER)
    if settings is None:
        settings = GradiumTTSSettings(base_url=base_url)
    return settings.api_url


@contextlib.asynccontextmanager
async def _client(client: httpx.AsyncClient | None, settings: AnySettings | None) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    async with http_client(timeout_s=settings.timeout_s if settings is not None else DEFAULT_TIMEOUT_S) as own:
        yield own


async def _get_json(
    api_key: str | Secret,
    path: str,
    *,
    settings: AnySettings | None,
    base_url: str | None,
    client: httpx.AsyncClient | None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    headers = api_headers(api_key)
    url = _api_url(settings, base_url) + path
    async with _client(client, settings) as http:
        response = await send_request(
            http, "GET", url, provider=PROVIDER, mapper=error_from_rest, secrets=(headers["x-api-key"],),
            headers=headers, params=params,
        )  # fmt: skip
    try:
        return response.json()
    except ValueError:
        raise ProtocolError(f"GET {path} did not answer JSON", provider=PROVIDER) from None


def _expiry(value: Any) -> datetime.datetime:
    if not isinstance(value, str):
        raise ProtocolError(f"the token answer has no ISO-8601 'expires_at' (got {value!r})", provider=PROVIDER)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"the token's 'expires_at' is not ISO-8601: {value!r}", provider=PROVIDER) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


async def create_token(
    api_key: str | Secret,
    *,
    settings: AnySettings | None = None,
    base_url: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> BrowserToken:
    """Mint a fresh single-use browser token (``GET /api-keys/token``)."""
    answer = await _get_json(api_key, TOKEN_PATH, settings=settings, base_url=base_url, client=client)
    token = answer.get("token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise ProtocolError("the token answer has no 'token' string", provider=PROVIDER)
    return BrowserToken(token, _expiry(answer.get("expires_at")))


def _voice(entry: Any) -> Voice:
    if not isinstance(entry, dict) or not isinstance(entry.get("uid"), str):
        raise ProtocolError(f"a listed voice has no 'uid': {entry!r:.120}", provider=PROVIDER)
    name = entry.get("name")
    language, description = entry.get("language"), entry.get("description")
    return Voice(
        entry["uid"],
        name if isinstance(name, str) and name else entry["uid"],
        language=language if isinstance(language, str) and language else None,
        description=description if isinstance(description, str) and description else None,
    )


async def list_voices(
    api_key: str | Secret,
    *,
    include_catalog: bool = True,
    settings: AnySettings | None = None,
    base_url: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> list[Voice]:
    """The organisation's own voices, and Gradium's catalogue unless ``include_catalog`` is False."""
    params = {"limit": 0, "include_catalog": int(include_catalog)}
    answer = await _get_json(api_key, VOICES_PATH, settings=settings, base_url=base_url, client=client, params=params)
    if not isinstance(answer, list):
        raise ProtocolError("the voice list is not a JSON array", provider=PROVIDER)
    return [_voice(entry) for entry in answer]


def _count(answer: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = answer.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def _text(answer: Mapping[str, Any], name: str) -> str | None:
    value = answer.get(name)
    return value if isinstance(value, str) else None


async def credits(
    api_key: str | Secret,
    *,
    settings: AnySettings | None = None,
    base_url: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> Credits:
    """The credit balance (``GET /usages/credits``); reads ``remaining_credits`` or ``remaining`` (and allocated)."""
    answer = await _get_json(api_key, CREDITS_PATH, settings=settings, base_url=base_url, client=client)
    if not isinstance(answer, dict):
        raise ProtocolError("the credits answer is not a JSON object", provider=PROVIDER)
    remaining = _count(answer, "remaining_credits", "remaining")
    if remaining is None:
        raise ProtocolError("the credits answer has no number 'remaining_credits' or 'remaining'", provider=PROVIDER)
    return Credits(
        remaining=remaining,
        allocated=_count(answer, "allocated_credits", "allocated"),
        billing_period=_text(answer, "billing_period"),
        next_rollover_date=_text(answer, "next_rollover_date"),
        plan_name=_text(answer, "plan_name"),
    )
