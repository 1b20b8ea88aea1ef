"""Thin transports shared by every backend: WebSocket and HTTP connections whose failures are typed errors.

Vendor code stays sans-IO (its ``protocol.py``); this module only connects, reads and maps failures:

- :func:`connect_websocket` opens a WebSocket (websockets' asyncio client) and turns a refused handshake into
  :class:`~speechbridge.errors.AuthenticationError`, :class:`~speechbridge.errors.RateLimitError` (with
  ``retry_after``) or :class:`~speechbridge.errors.ProviderError`, and an unreachable or silent host into
  :class:`~speechbridge.errors.TransportError`.
- :func:`closed_error` turns a :class:`websockets.exceptions.ConnectionClosed` into a typed error, through the
  vendor's own close-code table when it has one.
- :func:`http_client`, :func:`send_request`, :func:`stream_request`, :func:`raise_for_status` and
  :func:`iter_ndjson` do the same for REST on httpx.

Keys and tokens never appear in errors or logs: URLs are shown through :func:`redact_url`, and text that came from a
server (an error body, a close reason) passes through :func:`scrub` with the secrets of the request.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .errors import (
    AuthenticationError,
    ConfigError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "CloseMapper",
    "HTTPErrorMapper",
    "closed_error",
    "connect_websocket",
    "error_from_status",
    "http_client",
    "iter_ndjson",
    "raise_for_status",
    "redact_url",
    "retry_after_seconds",
    "scrub",
    "send_request",
    "stream_request",
]

HTTPErrorMapper: TypeAlias = Callable[[int, str], SpeechBridgeError]
"""A vendor's table from an HTTP status and body text to a typed error."""
CloseMapper: TypeAlias = Callable[[int | None, str], SpeechBridgeError]
"""A vendor's table from a WebSocket close code (or error-frame code) and reason to a typed error."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES: Final = 4 * 1024 * 1024
MAX_ERROR_TEXT: Final = 500
_SECRET_PARAMS: Final = ("token", "key", "secret", "signature", "sig", "auth", "password", "credential")
_RETRYABLE_CLOSE_CODES: Final = (1011, 1012, 1013, 1014)


def redact_url(url: str | httpx.URL) -> str:
    """``url`` with the values of token, key, secret and signature query parameters, and any password, hidden."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else netloc
    query = parse_qsl(parts.query, keep_blank_values=True)
    hidden = [(name, "***" if any(word in name.lower() for word in _SECRET_PARAMS) else value) for name, value in query]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(hidden, safe="*")))


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (from a server) with every secret replaced by ``***`` and cut to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = text.strip()
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "…"


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from now, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def error_from_status(status: int, body: str, *, provider: str, retry_after: float | None = None) -> SpeechBridgeError:
    """The generic typed error for an HTTP ``status``: 401/403 authentication, 429 rate limit, 5xx retryable."""
    message = body or f"HTTP {status}"
    if status in (401, 403):
        return AuthenticationError(message, provider=provider, code=status)
    if status == 429:
        return RateLimitError(message, provider=provider, code=status, retry_after=retry_after)
    return ProviderError(message, provider=provider, code=status, retryable=status >= 500 or status == 408)


def _typed_http_error(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    provider: str,
    mapper: HTTPErrorMapper | None,
) -> SpeechBridgeError:
    retry_after = retry_after_seconds(headers.get("retry-after"))
    if status == 429 or mapper is None:
        return error_from_status(status, body, provider=provider, retry_after=retry_after)
    error = mapper(status, body)
    if isinstance(error, RateLimitError) and error.retry_after is None:
        error.retry_after = retry_after
    return error


# --- WebSocket --------------------------------------------------------------------------------------------------


async def connect_websocket(
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    open_timeout: float = 10.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    http_error: HTTPErrorMapper | None = None,
    secrets: Iterable[str | None] = (),
) -> ClientConnection:
    """Open a WebSocket to ``url`` and return websockets' :class:`ClientConnection`.

    A handshake the server refuses becomes the error ``http_error`` (the vendor's table) or :func:`error_from_status`
    makes of its status and body (429 is always a :class:`RateLimitError` with ``Retry-After``); an unreachable host,
    a failed handshake or ``open_timeout`` passing becomes :class:`TransportError`. ``secrets`` (the key, a token)
    are scrubbed from any server text put into an error.
    """
    secrets = tuple(secrets)
    shown = redact_url(url)
    try:
        return await connect(
            url,
            additional_headers=dict(headers or {}),
            open_timeout=open_timeout,
            max_size=max_message_bytes,
            compression=None,
        )
    except InvalidURI:
        raise ConfigError(
            f"not a WebSocket URL: {shown!r} (accepted: ws://... or wss://...)", provider=provider
        ) from None
    except InvalidStatus as exc:
        response = exc.response
        body = scrub(bytes(response.body or b"").decode("utf-8", "replace"), secrets)
        raise _typed_http_error(
            response.status_code, body, response.headers, provider=provider, mapper=http_error
        ) from None
    except InvalidHandshake as exc:
        raise TransportError(f"WebSocket handshake with {shown} failed: {exc}", provider=provider) from None
    except TimeoutError:
        raise TransportError(f"connecting to {shown} timed out after {open_timeout:g} s", provider=provider) from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {shown}: {exc.strerror or exc}", provider=provider) from None


def closed_error(
    exc: ConnectionClosed,
    *,
    provider: str,
    mapper: CloseMapper | None = None,
    secrets: Iterable[str | None] = (),
) -> SpeechBridgeError:
    """The typed error for a WebSocket that closed while a request still expected answers.

    No close frame, or a normal close (1000/1001), is a retryable :class:`TransportError`; other codes go through the
    vendor's ``mapper`` (its error-frame table), else 1011-1014 are retryable :class:`ProviderError` and the rest are
    not.
    """
    code = exc.rcvd.code if exc.rcvd is not None else None
    reason = scrub(exc.rcvd.reason, secrets) if exc.rcvd is not None else ""
    if code is None or code in (1000, 1001, 1006):
        told = (
            f" with code {code}" + (f" ({reason})" if reason else "") if code is not None else " without a close frame"
        )
        return TransportError(f"the connection closed{told} before the request finished", provider=provider)
    message = reason or f"connection closed with code {code}"
    if mapper is not None:
        return mapper(code, message)
    return ProviderError(message, provider=provider, code=code, retryable=code in _RETRYABLE_CLOSE_CODES)


# --- HTTP -------------------------------------------------------------------------------------------------------


def http_client(
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    read_timeout_s: float | None = None,
) -> httpx.AsyncClient:
    """An httpx client: ``timeout_s`` to connect, write and wait for the pool, ``read_timeout_s`` (default the same)
    between two reads of an answer."""
    timeout = httpx.Timeout(timeout_s, read=read_timeout_s if read_timeout_s is not None else timeout_s)
    return httpx.AsyncClient(timeout=timeout, headers=dict(headers or {}))


async def raise_for_status(
    response: httpx.Response,
    *,
    provider: str,
    mapper: HTTPErrorMapper | None = None,
    secrets: Iterable[str | None] = (),
) -> None:
    """Raise the typed error for a non-2xx ``response`` (reading its body, which may be streamed)."""
    if response.is_success:
        return
    try:
        raw = await response.aread()
    except httpx.HTTPError:
        raw = b""
    body = scrub(raw.decode("utf-8", "replace"), secrets)
    raise _typed_http_error(response.status_code, body, response.headers, provider=provider, mapper=mapper)


@contextlib.asynccontextmanager
async def _http_errors(method: str, url: str, provider: str) -> AsyncIterator[None]:
    try:
        yield
    except httpx.TimeoutException:
        raise TransportError(f"{method} {redact_url(url)} timed out", provider=provider) from None
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise TransportError(f"{method} {redact_url(url)} failed: {detail}", provider=provider) from None
    except httpx.InvalidURL:
        raise ConfigError(f"not an HTTP URL: {redact_url(url)!r}", provider=provider) from None


async def send_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    mapper: HTTPErrorMapper | None = None,
    secrets: Iterable[str | None] = (),
    **kwargs: Any,
) -> httpx.Response:
    """Send a request and return its (2xx, fully read) response; failures raise typed errors."""
    secrets = tuple(secrets)
    async with _http_errors(method, url, provider):
        response = await client.request(method, url, **kwargs)
    await raise_for_status(response, provider=provider, mapper=mapper, secrets=secrets)
    return response


@contextlib.asynccontextmanager
async def stream_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    mapper: HTTPErrorMapper | None = None,
    secrets: Iterable[str | None] = (),
    **kwargs: Any,
) -> AsyncIterator[httpx.Response]:
    """Send a request and yield its 2xx response before the body is read (for :func:`iter_ndjson` or raw bytes).

    Failures, including those while the body is read inside the ``async with``, raise typed errors.
    """
    secrets = tuple(secrets)
    async with _http_errors(method, url, provider), client.stream(method, url, **kwargs) as response:
        await raise_for_status(response, provider=provider, mapper=mapper, secrets=secrets)
        yield response


async def iter_ndjson(
    response: httpx.Response,
    *,
    provider: str,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> AsyncIterator[dict[str, Any]]:
    """Each JSON object of a newline-delimited JSON body, as soon as its line is complete.

    Blank lines are skipped; a line that is not a JSON object, or longer than ``max_line_bytes``, raises
    :class:`ProtocolError`. The last line needs no newline.
    """
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            message = _ndjson_line(bytes(line), provider, max_line_bytes)
            if message is not None:
                yield message
        if len(rest) > max_line_bytes:
            raise ProtocolError(f"an NDJSON line is longer than {max_line_bytes} bytes", provider=provider)
        buffer = bytearray(rest)
    message = _ndjson_line(bytes(buffer), provider, max_line_bytes)
    if message is not None:
        yield message


def _ndjson_line(line: bytes, provider: str, max_line_bytes: int) -> dict[str, Any] | None:
    if len(line) > max_line_bytes:
        raise ProtocolError(f"an NDJSON line is longer than {max_line_bytes} bytes", provider=provider)
    if not line.strip():
        return None
    try:
        message = json.loads(line)
    except ValueError:
        raise ProtocolError(f"not a JSON line: {line[:80]!r}", provider=provider) from None
    if not isinstance(message, dict):
        raise ProtocolError(f"an NDJSON line is not a JSON object: {line[:80]!r}", provider=provider)
    return message
