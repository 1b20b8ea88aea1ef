"""Gradium WebSockets: one socket carrying one request, or many multiplexed by ``client_req_id``, and a small pool.

Both STT (``/speech/asr``) and TTS (``/speech/tts``) use it the same way::

    pool = ConnectionPool(Credentials(api_key=Secret("gd_...")))
    request = await pool.start(settings.ws_url + STT_WS_PATH, setup, multiplex=settings.multiplex,
                               timeout_s=settings.timeout_s)
    ready = await request.ready(settings.timeout_s)  # or read the ReadyOut from receive() yourself
    await request.send(client_audio(frame))       # any client_* message; client_req_id is stamped for you
    await request.send(client_end_of_stream())
    async for message in request:                 # parsed ServerMessage objects, up to EndOfStreamOut
        ...
    await request.aclose()                        # always (e.g. in a finally): frees the socket
    await pool.aclose()                           # provider.aclose()

Without ``multiplex`` each request gets its own socket (the server closes it after ``end_of_stream``). With it, the
pool keeps sockets open (``close_ws_on_eos: false``) and runs up to ``max_requests`` requests on each, each request
with its own ``client_req_id``; a socket is reused by later requests until it is ``max_age_s`` old (Gradium ends
sessions after 300 s), or until a request on it is abandoned (released before its ``end_of_stream``: Gradium has no
cancel message, so the socket closes once its other requests are done).

Failures are typed errors raised by ``receive()`` / ``send()``: an ``error`` frame carrying a request's
``client_req_id`` fails that request only; one without it, a malformed frame, or the socket closing fails every open
request on the socket (close codes through :func:`protocol.error_from_code`). Keys and tokens never appear in errors.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import json
import logging
import time
from binascii import b2a_base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import attrs

from speechbridge.errors import ConfigError, ProtocolError, SpeechBridgeError, StreamClosed, TransportError
from speechbridge.provider import Secret
from speechbridge.transports import redact_url
from speechbridge.websocket import Message, WebSocket, WebSocketClosed, closed_error, connect_websocket

from .protocol import (
    PROVIDER,
    EndOfStreamOut,
    ErrorOut,
    ReadyOut,
    ServerMessage,
    Setup,
    client_end_of_stream,
    client_setup,
    error_from_code,
    error_from_rest,
    parse_server_message,
)

__all__ = ["API_SOURCE", "ConnectionPool", "Credentials", "GradiumConnection", "GradiumRequest", "TokenSource"]

API_SOURCE: Final = "speechbridge"
DEFAULT_MAX_REQUESTS: Final = 16
DEFAULT_MAX_AGE_S: Final = 240.0

log = logging.getLogger("speechbridge.gradium")

TokenSource = Callable[[], "Awaitable[str] | str"]
"""Mints a fresh single-use browser token (e.g. ``account.create_token``); called once per new socket."""


@attrs.frozen
class Credentials:
    """How sockets authenticate: an API key (``x-api-key`` header) or a browser token (``?token=``).

    A Gradium browser token is single-use: a fixed ``token`` serves exactly one connection, so with pooled or
    reconnecting sockets pass a :data:`TokenSource` that mints a fresh one each time (getting tokens is the caller's
    job: see ``account.create_token`` and the ``browser`` helper).
    """

    api_key: Secret | None = None
    token: Secret | TokenSource | None = None

    def __attrs_post_init__(self) -> None:
        if self.api_key is None and self.token is None:
            raise ConfigError(
                "no API key or token (set GRADIUM_API_KEY, or pass api_key= or token=)", provider=PROVIDER
            )

    @property
    def headers(self) -> dict[str, str]:
        """Headers for REST requests and WebSocket upgrades authenticated by key."""
        headers = {"x-api-source": API_SOURCE}
        if self.api_key is not None:
            headers["x-api-key"] = self.api_key.value
        return headers

    async def authenticate(self, url: str) -> tuple[str, dict[str, str], tuple[str, ...]]:
        """The URL, headers and secrets (to scrub from errors) of one new socket or request.

        A token goes into the URL as ``?token=`` (Gradium documents it for WebSockets only); a key into the headers.
        """
        if self.token is None:
            return url, self.headers, self._secrets()
        token = self.token
        if not isinstance(token, Secret):
            minted = token()
            value = await minted if inspect.isawaitable(minted) else minted
            if not isinstance(value, str) or not value:
                raise ConfigError("the token source returned no token", provider=PROVIDER)
            token = Secret(value)
        parts = urlsplit(url)
        query = "&".join(filter(None, (parts.query, urlencode({"token": token.value}))))
        return urlunsplit(parts._replace(query=query)), {"x-api-source": API_SOURCE}, (*self._secrets(), token.value)

    def _secrets(self) -> tuple[str, ...]:
        secrets = [self.api_key.value] if self.api_key is not None else []
        if isinstance(self.token, Secret):
            secrets.append(self.token.value)
        return tuple(secrets)


class GradiumRequest:
    """One request (a ``setup`` and what follows) on a :class:`GradiumConnection`.

    Send with :meth:`send`; read parsed server messages in order with :meth:`receive` or ``async for`` (which stops
    after :class:`EndOfStreamOut`). An error for this request, or for its socket, is raised by both.
    """

    def __init__(self, connection: GradiumConnection, client_req_id: str | None) -> None:
        self.connection = connection
        self.client_req_id = client_req_id
        self.finished = False  # EndOfStreamOut was received
        self._inbox: collections.deque[ServerMessage | SpeechBridgeError] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: SpeechBridgeError | None = None
        self._closed = False
        self._stamp = f',"client_req_id":{json.dumps(client_req_id)}' if client_req_id is not None else ""
        self._on_message: Callable[[ServerMessage], None] | None = None
        self._on_error: Callable[[SpeechBridgeError], None] | None = None

    def __repr__(self) -> str:
        return f"<GradiumRequest {self.client_req_id or 'single'} on {self.connection!r}>"

    async def send(self, message: dict[str, Any]) -> None:
        """Send a ``client_*`` message, stamped with this request's ``client_req_id``."""
        self._check_open()
        if self.client_req_id is not None:
            message = {**message, "client_req_id": self.client_req_id}
        await self.connection._send(json.dumps(message), self)

    async def send_audio(self, audio: bytes) -> None:
        """Send ``audio`` as an ``audio`` message: the same JSON as ``send(client_audio(audio))``, written directly
        (base64 needs no escaping), since this runs for every 80 ms of every stream."""
        if self._error is not None or self._closed or self.finished:
            self._check_open()
        encoded = b2a_base64(audio, newline=False).decode("ascii")
        try:
            await self.connection._websocket.send(f'{{"type":"audio","audio":"{encoded}"{self._stamp}}}')
        except WebSocketClosed as exc:
            raise self.connection._send_failed(exc, self) from None

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed or self.finished:
            raise StreamClosed("this Gradium request is over: nothing more can be sent", provider=PROVIDER)

    async def receive(self) -> ServerMessage:
        """The next server message of this request; raises the request's typed error."""
        if self._closed:
            raise StreamClosed("this Gradium request was closed", provider=PROVIDER)
        while not self._inbox:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._inbox[0]
        if isinstance(item, SpeechBridgeError):
            raise item  # stays in the inbox: every later receive() raises it too
        self._inbox.popleft()
        return item

    async def ready(self, timeout_s: float) -> ReadyOut:
        """Wait for the answer to ``setup``: the first message must be ``ready`` (an ``error`` is raised)."""
        try:
            async with asyncio.timeout(timeout_s):
                message = await self.receive()
        except TimeoutError:
            raise TransportError(f"no 'ready' from the server within {timeout_s:g} s", provider=PROVIDER) from None
        if not isinstance(message, ReadyOut):
            raise ProtocolError(f"expected 'ready' first, the server sent {message!r}", provider=PROVIDER)
        return message

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ServerMessage]:
        while True:
            message = await self.receive()
            yield message
            if isinstance(message, EndOfStreamOut):
                return

    async def aclose(self) -> None:
        """Stop using this request and free its place on the socket. Safe to call twice.

        An unfinished request is abandoned (Gradium has no cancel message): its single-use socket is closed; a
        shared socket gets ``end_of_stream`` for it, drops its later messages, takes no new requests and closes once
        its other requests are released.
        """
        if self._closed:
            return
        self._closed = True
        await self.connection._release(self)

    def _deliver(self, message: ServerMessage) -> None:
        if type(message) is EndOfStreamOut:
            self.finished = True
        self._put(message)

    def _fail(self, error: SpeechBridgeError) -> None:
        if self._error is None and not self.finished:
            self._error = error
            self._put(error)

    def listen(
        self, on_message: Callable[[ServerMessage], None], on_error: Callable[[SpeechBridgeError], None]
    ) -> None:
        """Hand each message to ``on_message`` as it arrives (those already received first), and the request's
        failure, or a :class:`SpeechBridgeError` raised by ``on_message``, to ``on_error``: no queue and no task in
        between, for the live path. :meth:`receive` is not used afterwards."""
        self._on_message, self._on_error = on_message, on_error
        while self._inbox:
            self._put(self._inbox.popleft())

    def _put(self, item: ServerMessage | SpeechBridgeError) -> None:
        on_message, on_error = self._on_message, self._on_error
        if on_message is None or on_error is None:
            self._inbox.append(item)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
        elif isinstance(item, SpeechBridgeError):
            on_error(item)
        else:
            try:
                on_message(item)
            except SpeechBridgeError as error:
                on_error(error)


class GradiumConnection:
    """One open WebSocket and the task that routes its messages to its requests.

    Create it with :meth:`connect`; start requests with :meth:`start`. A ``multiplexed`` connection stamps each
    request with a fresh ``client_req_id`` and asks the server to keep the socket after ``end_of_stream``; otherwise
    it carries exactly one request.
    """

    def __init__(self, websocket: WebSocket, *, url: str, multiplexed: bool, secrets: tuple[str, ...] = ()) -> None:
        self.url = redact_url(url)
        self.multiplexed = multiplexed
        self.opened_at = time.monotonic()
        self.requests_started = 0
        self.retired = False  # takes no new requests; closes once the last one is released
        self._websocket = websocket
        self._secrets = secrets
        self._requests: dict[str | None, GradiumRequest] = {}
        self._ids = itertools.count(1)
        self._error: SpeechBridgeError | None = None
        websocket.listen(self._on_frame, self._on_close)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._requests)} active"
        return f"<GradiumConnection {self.url} {'multiplexed' if self.multiplexed else 'single'}, {state}>"

    @classmethod
    async def connect(
        cls,
        url: str,
        credentials: Credentials,
        *,
        multiplexed: bool = False,
        timeout_s: float = 10.0,
        dead_peer_timeout_s: float = 10.0,
    ) -> GradiumConnection:
        """Open a socket to ``url`` (a full ``ws(s)://.../speech/asr`` or ``/speech/tts`` URL)."""
        url, headers, secrets = await credentials.authenticate(url)
        websocket = await connect_websocket(
            url,
            provider=PROVIDER,
            headers=headers,
            open_timeout=timeout_s,
            dead_peer_timeout_s=dead_peer_timeout_s,
            http_error=error_from_rest,
            secrets=secrets,
        )
        log.debug("connected to %s", redact_url(url))
        return cls(websocket, url=url, multiplexed=multiplexed, secrets=secrets)

    @property
    def closed(self) -> bool:
        return self._websocket.closed is not None

    @property
    def active(self) -> int:
        """Requests started and not yet released."""
        return len(self._requests)

    def accepts(self, max_requests: int, max_age_s: float) -> bool:
        """Whether a new request may start here now."""
        if self.closed or self.retired or not self.multiplexed:
            return False
        return self.active < max_requests and time.monotonic() - self.opened_at < max_age_s

    async def start(self, setup: Setup) -> GradiumRequest:
        """Send ``setup`` and return its request (multiplexed: stamped with a ``client_req_id`` of its own)."""
        if self._error is not None:
            raise self._error
        if self.closed:
            raise TransportError(f"the connection to {self.url} is closed", provider=PROVIDER)
        if self.multiplexed:
            client_req_id = setup.client_req_id or f"req-{next(self._ids)}"
            if client_req_id in self._requests:
                raise ConfigError(
                    f"client_req_id {client_req_id!r} is already in use on this socket", provider=PROVIDER
                )
            setup = attrs.evolve(setup, client_req_id=client_req_id, close_ws_on_eos=False)
        elif self.requests_started:
            raise StreamClosed("a connection that is not multiplexed carries a single request", provider=PROVIDER)
        else:
            client_req_id = None
        request = GradiumRequest(self, client_req_id)
        self._requests[client_req_id] = request
        self.requests_started += 1
        try:
            await self._send(json.dumps(client_setup(setup)), request)
        except BaseException:
            self._requests.pop(client_req_id, None)
            raise
        return request

    async def aclose(self) -> None:
        """Close the socket (1000); open requests fail with :class:`StreamClosed`."""
        self.retired = True
        self._fail_all(StreamClosed(f"the connection to {self.url} was closed", provider=PROVIDER))
        with contextlib.suppress(Exception):
            await self._websocket.close()

    async def _send(self, text: str, request: GradiumRequest) -> None:
        try:
            await self._websocket.send(text)
        except WebSocketClosed as exc:
            raise self._send_failed(exc, request) from None

    def _send_failed(self, closed: WebSocketClosed, request: GradiumRequest) -> SpeechBridgeError:
        """The typed error of a send that found the socket closed; ``request`` fails with it."""
        error = (
            request._error
            or self._error
            or closed_error(closed, provider=PROVIDER, mapper=error_from_code, secrets=self._secrets)
        )
        request._fail(error)
        return error

    async def _release(self, request: GradiumRequest) -> None:
        if self._requests.get(request.client_req_id) is request:
            del self._requests[request.client_req_id]
            if self.multiplexed and not request.finished and request._error is None and not self.closed:
                self.retired = True  # the server still works on it: closing the socket is the only way to stop it
                with contextlib.suppress(Exception):
                    await self._websocket.send(json.dumps(client_end_of_stream(request.client_req_id)))
        if not self.multiplexed or (self.retired and not self._requests):
            await self.aclose()

    def _on_frame(self, frame: Message) -> None:
        try:
            message = parse_server_message(frame)
        except SpeechBridgeError as exc:
            self._error = exc
            self._fail_all(exc)
            asyncio.get_running_loop().create_task(self._websocket.close(1002, "malformed message"))
            return
        self._route(message)

    def _on_close(self, closed: WebSocketClosed) -> None:
        self._fail_all(closed_error(closed, provider=PROVIDER, mapper=error_from_code, secrets=self._secrets))

    def _route(self, message: ServerMessage) -> None:
        requests = self._requests
        stamped = self.multiplexed and message.client_req_id is not None
        if stamped:
            request = requests.get(message.client_req_id)
        elif not self.multiplexed:
            request = requests.get(None)
        else:  # an unstamped reply belongs to the request when there is only one
            request = next(iter(requests.values())) if len(requests) == 1 else None
        if type(message) is ErrorOut:
            error = error_from_code(message.code, _scrubbed(message.message, self._secrets))
            if request is not None:
                request._fail(error)
            elif not stamped:
                self._error = error
                self._fail_all(error)
            return
        if request is None:
            log.debug("dropped %s for no open request on %s", type(message).__name__, self.url)
            return
        request._deliver(message)
        if request.finished and self.multiplexed:
            self._requests.pop(message.client_req_id, None)

    def _fail_all(self, error: SpeechBridgeError) -> None:
        for request in self._requests.values():
            request._fail(error)


def _scrubbed(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class ConnectionPool:
    """Sockets of one provider, by URL: single-use ones for plain requests, shared ones for multiplexed requests.

    ``max_requests`` bounds the concurrent requests on one shared socket (more opens another); a shared socket takes
    no new request once it is ``max_age_s`` old, and closes when its last request is released. A socket whose server
    answers nothing, not even a ping, for ``dead_peer_timeout_s`` is dropped (its requests fail with TransportError).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        dead_peer_timeout_s: float = 10.0,
    ) -> None:
        if max_requests < 1:
            raise ConfigError(f"max_requests must be at least 1, not {max_requests!r}", provider=PROVIDER)
        self.credentials = credentials
        self.max_requests = max_requests
        self.dead_peer_timeout_s = dead_peer_timeout_s
        self.max_age_s = max_age_s
        self._shared: dict[str, list[GradiumConnection]] = {}
        self._lock = asyncio.Lock()
        self._single: set[GradiumConnection] = set()

    async def start(self, url: str, setup: Setup, *, multiplex: bool, timeout_s: float = 10.0) -> GradiumRequest:
        """Send ``setup`` on a suitable socket to ``url`` (a new one, or a shared one when ``multiplex``) and return
        the request; ``timeout_s`` bounds connecting."""
        if multiplex:
            return await self._start_shared(url, setup, timeout_s)
        single = await GradiumConnection.connect(
            url, self.credentials, timeout_s=timeout_s, dead_peer_timeout_s=self.dead_peer_timeout_s
        )
        self._single = {c for c in self._single if not c.closed} | {single}
        try:
            return await single.start(setup)
        except BaseException:
            await single.aclose()
            raise

    async def _start_shared(self, url: str, setup: Setup, timeout_s: float) -> GradiumRequest:
        async with self._lock:
            connections = [c for c in self._shared.get(url, []) if not c.closed]
            for old in connections:
                if time.monotonic() - old.opened_at >= self.max_age_s:
                    old.retired = True
                    if not old.active:
                        await old.aclose()
            connections = [c for c in connections if not c.closed]
            shared = next((c for c in connections if c.accepts(self.max_requests, self.max_age_s)), None)
            if shared is None:
                shared = await GradiumConnection.connect(
                    url,
                    self.credentials,
                    multiplexed=True,
                    timeout_s=timeout_s,
                    dead_peer_timeout_s=self.dead_peer_timeout_s,
                )
                connections.append(shared)
            self._shared[url] = connections
            return await shared.start(setup)

    def connections(self, url: str) -> list[GradiumConnection]:
        """The open shared sockets to ``url``."""
        return [c for c in self._shared.get(url, []) if not c.closed]

    async def aclose(self) -> None:
        """Close every socket; requests still open fail with :class:`StreamClosed`."""
        connections = [c for group in self._shared.values() for c in group] + list(self._single)
        self._shared.clear()
        self._single.clear()
        await asyncio.gather(*(c.aclose() for c in connections), return_exceptions=True)
