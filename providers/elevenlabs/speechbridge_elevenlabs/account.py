"""ElevenLabs single-use tokens: ``POST /v1/single-use-token/{token_type}``.

A token is valid for 15 minutes, for one use of its kind: ``realtime_scribe`` (a realtime STT socket),
``batch_scribe`` (one ``POST /v1/speech-to-text``) or ``tts_websocket`` (one TTS socket)::

    token = await create_token(os.environ["ELEVENLABS_API_KEY"], "realtime_scribe")
    stt = ElevenLabsSTT(token=token.token)                  # or token=lambda: ... to mint one per use
    url = token.url("wss://api.elevenlabs.io/v1/speech-to-text/realtime?model_id=scribe_v2_realtime")
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

import attrs
import httpx

from speechbridge.errors import ConfigError, ProtocolError
from speechbridge.provider import Secret
from speechbridge.transports import http_client, send_request

from .protocol import API_HOSTS, PROVIDER, TOKEN_PATH, TOKEN_TYPES, error_from_rest

__all__ = ["SingleUseToken", "create_token"]

DEFAULT_TIMEOUT_S: Final = 10.0
QUERY_NAMES: Final = {"realtime_scribe": "token", "batch_scribe": "token", "tts_websocket": "single_use_token"}


@attrs.frozen
class SingleUseToken:
    """A token for one use of ``token_type``; ``repr`` never shows it."""

    token: str = attrs.field(repr=False)
    token_type: str

    def url(self, url: str) -> str:
        """``url`` with this token in the query parameter its kind uses (``token`` or ``single_use_token``)."""
        joiner = "&" if "?" in url else "?"
        return f"{url}{joiner}{urlencode({QUERY_NAMES[self.token_type]: self.token})}"


async def create_token(
    api_key: str | Secret,
    token_type: str,
    *,
    base_url: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> SingleUseToken:
    """Mint a single-use token of ``token_type`` (one of :data:`~.protocol.TOKEN_TYPES`)."""
    key = api_key.value if isinstance(api_key, Secret) else api_key
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the ElevenLabs API key is empty (set ELEVENLABS_API_KEY)", provider=PROVIDER)
    if token_type not in TOKEN_TYPES:
        raise ConfigError(f"token_type={token_type!r} is not accepted", allowed=TOKEN_TYPES, provider=PROVIDER)
    url = (base_url or API_HOSTS["default"]).rstrip("/").removesuffix("/v1") + TOKEN_PATH.format(token_type=token_type)
    own = client is None
    http = client or http_client(timeout_s=DEFAULT_TIMEOUT_S)
    try:
        response = await send_request(
            http, "POST", url, provider=PROVIDER, mapper=error_from_rest, secrets=(key,), headers={"xi-api-key": key}
        )
    finally:
        if own:
            await http.aclose()
    try:
        token = response.json().get("token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ProtocolError("the token answer has no 'token' string", provider=PROVIDER)
    return SingleUseToken(token, token_type)
