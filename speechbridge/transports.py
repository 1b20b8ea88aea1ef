"""Thin HTTP transport shared by every backend: requests whose failures are typed errors (WebSockets:
:mod:`speechbridge.websocket`).

Vendor code stays sans-IO (its ``protocol.py``); this module only connects, reads and maps failures:

- :func:`http_client`, :func:`send_request`, :func:`stream_request`, :func:`raise_for_status` and
  :func:`iter_ndjson` do it for REST on httpx; the client is a :class:`RetryingClient`, so every REST call
  of every backend is retried as its provider's :class:`~speechbridge.reliability.Reliability` says.

Keys and tokens never appear in errors or logs: URLs are shown through :func:`redact_url`, and text that came from a
server (an error body, a close reason) passes through :func:`scrub` with the secrets of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import httpx

from .errors import (
    AuthenticationError,
    ConfigError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
)
from .reliability import Reliability, is_retryable

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ERROR_MAPPER_EXTENSION",
    "RETRY_AFTER_FACTOR",
    "HTTPErrorMapper",
    "RedactSecrets",
    "RedactedLog",
    "RetryingClient",
    "error_from_status",
    "http_client",
    "iter_ndjson",
    "raise_for_status",
    "redact",
    "redact_url",
    "retry_after_seconds",
    "scrub",
    "scrub_error",
    "send_request",
    "stream_request",
    "typed_http_error",
]

HTTPErrorMapper: TypeAlias = Callable[[int, str], SpeechBridgeError]
"""A vendor's table from an HTTP status and body text to a typed error."""
E = TypeVar("E", bound=SpeechBridgeError)

DEFAULT_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES: Final = 4 * 1024 * 1024
MAX_ERROR_TEXT: Final = 500
_SECRET_PARAMS: Final = ("token", "key", "secret", "signature", "sig", "auth", "password", "credential")
_SECRET_NAME: Final = r"[\w-]*(?:key|token|auth|secret|cookie|password|credential)[\w-]*|sec-websocket-protocol"
_SECRET_HEADER: Final = re.compile(rf"(?im)(^|\\r\\n|[<>] )({_SECRET_NAME})(:[ \t]*)([^\r\n\\']+)")  # a header line
_WITH_QUERY: Final = re.compile(r"[^\s\"'?]*\?[^\s\"']+")  # a URL or path with a query string
_QUERY_STRING: Final = re.compile(r"(?<='query_string': b')[^']+")  # in an ASGI scope, as uvicorn traces it
ERROR_MAPPER_EXTENSION: Final = "speechbridge.error_mapper"
"""The httpx request extension holding the request's :data:`HTTPErrorMapper`."""
RETRY_AFTER_FACTOR: Final = 4
"""A ``Retry-After`` longer than this many times ``max_backoff_s`` is not waited for: the error goes to the caller."""
_RETRYABLE_FAILURES: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

log = logging.getLogger("speechbridge.transports")


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
        for form in _forms(secret):
            text = text.replace(form, "***")
    text = text.strip()
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "…"


def scrub_error(error: E, secrets: Iterable[str | None]) -> E:
    """``error``, made of text from a server, with every secret in its message masked (servers may echo them)."""
    error.message = scrub(error.message, secrets)
    error.args = (error.message,)
    return error


def _forms(secret: str | None) -> set[str]:
    """How a secret appears in text: as is and URL-encoded."""
    return {secret, quote(secret, safe=""), quote_plus(secret)} if secret else set()


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters of every URL or path in it, and of credential headers
    written as ``Name: value`` (``x-api-key: ...``, ``Authorization: ...``), replaced by ``***``."""
    text = _QUERY_STRING.sub(lambda found: redact_url("?" + found.group())[1:], text)
    return _SECRET_HEADER.sub(r"\1\2\3***", _WITH_QUERY.sub(lambda found: redact_url(found.group()), text))


class RedactSecrets(logging.Filter):
    """Masks secrets in a log record (:func:`redact`): in its arguments, keeping them apart for formatters that read
    them (uvicorn's access log), or in the whole message when the template makes a secret of an argument (websockets
    logs handshake headers as ``("> %s: %s", name, value)``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.args:
            record.msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
            return True
        if isinstance(record.args, tuple):
            shown = (str, bytes, bytearray, httpx.URL, dict)
            record.args = tuple(redact(str(arg)) if isinstance(arg, shown) else arg for arg in record.args)
        try:
            message = str(record.msg) % record.args
        except (TypeError, ValueError, KeyError):
            return True
        if redact(message) != message:
            record.msg, record.args = redact(message), ()
        return True


class RedactedLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose messages pass through :func:`redact`, for libraries that log on loggers of their own making
    (picows logs each connection on a new child logger, which no filter reaches)."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            self.logger.log(level, "%s", redact(str(msg) % args if args else str(msg)), **kwargs)


for _name in ("httpx", "websockets.client"):  # their request lines and handshakes name URLs and credential headers
    logging.getLogger(_name).addFilter(RedactSecrets())


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


def typed_http_error(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    provider: str,
    mapper: HTTPErrorMapper | None,
) -> SpeechBridgeError:
    """The typed error of a refused request (or WebSocket upgrade): the vendor's table, else by status; a 429 is
    always a :class:`RateLimitError` with the ``Retry-After`` of ``headers``."""
    retry_after = retry_after_seconds(headers.get("retry-after"))
    if status == 429 or mapper is None:
        return error_from_status(status, body, provider=provider, retry_after=retry_after)
    error = mapper(status, body)
    if isinstance(error, RateLimitError) and error.retry_after is None:
        error.retry_after = retry_after
    return error


# --- HTTP -------------------------------------------------------------------------------------------------------


class RetryingClient(httpx.AsyncClient):
    """An httpx client that tries a request again, as its :class:`~speechbridge.reliability.Reliability` allows, when
    the failure is worth it.

    Retried: a connection that fails, drops or times out before the answer is complete (a streamed 2xx answer is
    never retried once returned: its caller may have used part of it); a 429, after its ``Retry-After`` when given;
    any other error answer the request's vendor table (:data:`ERROR_MAPPER_EXTENSION`, set by :func:`send_request`
    and :func:`stream_request`) calls retryable, e.g. a 5xx. Never retried: authentication, validation and other
    errors that would fail the same way, a body streamed from an iterator (it cannot be sent twice), and a
    ``Retry-After`` longer than ``RETRY_AFTER_FACTOR * max_backoff_s`` (the caller gets the error, with
    ``retry_after``). Each retry is logged at DEBUG on ``speechbridge.transports`` with the redacted URL.
    """

    def __init__(self, *, reliability: Reliability, **options: Any) -> None:
        super().__init__(**options)
        self.reliability = reliability

    async def send(self, request: httpx.Request, *, stream: bool = False, **options: Any) -> httpx.Response:
        replayable = await _replayable(request)
        attempt = 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            try:
                response = await super().send(request, stream=True, **options)
                wait = await self._wait_before_retry(request, response, attempt) if replayable else None
                if wait is None:
                    if not stream:
                        await response.aread()
                    return response
                reason = f"HTTP {response.status_code}"
                await response.aclose()
            except _RETRYABLE_FAILURES as exc:
                if response is not None:
                    await response.aclose()
                if not replayable or attempt > self.reliability.retries:
                    raise
                wait, reason = self.reliability.delay(attempt), type(exc).__name__
            log.debug(
                "retrying %s %s in %.2f s (retry %d of %d): %s",
                request.method,
                redact_url(request.url),
                wait,
                attempt,
                self.reliability.retries,
                reason,
            )
            await asyncio.sleep(wait)

    async def _wait_before_retry(self, request: httpx.Request, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before trying ``request`` again after ``response``, or None to answer with it."""
        if response.status_code < 400 or attempt > self.reliability.retries:
            return None
        if response.status_code != 429:
            mapper = request.extensions.get(ERROR_MAPPER_EXTENSION, _generic_error)
            body = (await response.aread()).decode("utf-8", "replace")
            if not is_retryable(mapper(response.status_code, body)):
                return None
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        if retry_after is not None and retry_after > RETRY_AFTER_FACTOR * self.reliability.max_backoff_s:
            return None
        return self.reliability.delay(attempt, retry_after=retry_after)


async def _replayable(request: httpx.Request) -> bool:
    """Whether ``request`` can be sent again: a body of known length is read into memory once (a no-op for bytes,
    JSON and forms); one streamed from an iterator (chunked) cannot be."""
    if "transfer-encoding" in request.headers:
        return False
    await request.aread()
    return True


def _generic_error(status: int, body: str) -> SpeechBridgeError:
    return error_from_status(status, body, provider="http")


def http_client(
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    read_timeout_s: float | None = None,
    reliability: Reliability | None = None,
) -> RetryingClient:
    """An httpx client (a :class:`RetryingClient`): ``timeout_s`` to connect, write and wait for the pool,
    ``read_timeout_s`` (default the same) between two reads of an answer, and each attempt retried as ``reliability``
    says (default: ``Reliability()``; ``Reliability(retries=0)`` never retries)."""
    timeout = httpx.Timeout(timeout_s, read=read_timeout_s if read_timeout_s is not None else timeout_s)
    return RetryingClient(
        reliability=reliability if reliability is not None else Reliability(),
        timeout=timeout,
        headers=dict(headers or {}),
    )


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
    raise typed_http_error(response.status_code, body, response.headers, provider=provider, mapper=mapper)


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
        response = await client.request(method, url, **_with_mapper(kwargs, mapper))
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
    async with (
        _http_errors(method, url, provider),
        client.stream(method, url, **_with_mapper(kwargs, mapper)) as response,
    ):
        await raise_for_status(response, provider=provider, mapper=mapper, secrets=secrets)
        yield response


def _with_mapper(kwargs: dict[str, Any], mapper: HTTPErrorMapper | None) -> dict[str, Any]:
    """Request ``kwargs`` carrying the vendor's error table, so a :class:`RetryingClient` knows what is retryable."""
    if mapper is None:
        return kwargs
    return {**kwargs, "extensions": {**kwargs.get("extensions", {}), ERROR_MAPPER_EXTENSION: mapper}}


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
    line = bytearray()  # the line not yet ended; only new bytes are searched, so a line cut fine costs no more
    async for chunk in response.aiter_bytes():
        *ended, rest = chunk.split(b"\n")
        for piece in ended:
            line += piece
            message = _ndjson_line(bytes(line), provider, max_line_bytes)
            line.clear()
            if message is not None:
                yield message
        line += rest
        if len(line) > max_line_bytes:
            raise ProtocolError(f"an NDJSON line is longer than {max_line_bytes} bytes", provider=provider)
    message = _ndjson_line(bytes(line), provider, max_line_bytes)
    if message is not None:
        yield message


def _ndjson_line(line: bytes, provider: str, max_line_bytes: int) -> dict[str, Any] | None:
    if len(line) > max_line_bytes:
        raise ProtocolError(f"an NDJSON line is longer than {max_line_bytes} bytes", provider=provider)
    if not line.strip():
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError(f"not a JSON line: {line[:80]!r}", provider=provider) from None
    if not isinstance(message, dict):
        raise ProtocolError(f"an NDJSON line is not a JSON object: {line[:80]!r}", provider=provider)
    return message
