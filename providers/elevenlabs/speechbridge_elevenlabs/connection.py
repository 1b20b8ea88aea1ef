"""ElevenLabs TTS sockets (``multi-stream-input``): contexts routed by ``contextId``, and a small pool.

Every stream is a context. Without ``multiplex`` each stream opens its own socket and closes it when done; with it,
streams with the same URL (voice, model, output format) share sockets, at most :data:`MAX_CONTEXTS` contexts each,
kept open for later streams until the provider closes (or ElevenLabs' inactivity timeout closes them).
An error frame naming a context fails that context only; one naming none, a malformed frame or the socket closing
fails every context on the socket (close codes and error kinds through :func:`protocol.error_from_close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from speechbridge.errors import SpeechBridgeError, TransportError
from speechbridge.transports import redact_url, scrub_error
from speechbridge.websocket import WebSocket, WebSocketClosed, closed_error, connect_websocket

from .client import Credentials
from .protocol import (
    MAX_CONTEXTS,
    PROVIDER,
    TTSErrorOut,
    TTSServerMessage,
    client_close_context,
    client_close_socket,
    error_from_close,
    error_from_rest,
    parse_tts_server_message,
)

__all__ = ["TTSSocket", "TTSSocketPool"]

log = logging.getLogger("speechbridge.elevenlabs")

Inbox = asyncio.Queue[TTSServerMessage | SpeechBridgeError]


class TTSSocket:
    """One open ``multi-stream-input`` socket and the task routing its messages to its contexts' inboxes."""

    def __init__(self, websocket: WebSocket, *, url: str, shared: bool, secrets: tuple[str, ...]) -> None:
        self.url = redact_url(url)
        self.shared = shared
        self.contexts_started = 0
        self._websocket = websocket
        self._secrets = secrets
        self._inboxes: dict[str, Inbox] = {}
        self._error: SpeechBridgeError | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"elevenlabs reader {self.url}")

    @classmethod
    async def connect(
        cls, url: str, credentials: Credentials, *, shared: bool, timeout_s: float, dead_peer_timeout_s: float
    ) -> TTSSocket:
        url, headers, secrets = await credentials.authenticate(url, token_param="single_use_token")
        websocket = await connect_websocket(
            url,
            provider=PROVIDER,
            headers=headers,
            open_timeout=timeout_s,
            dead_peer_timeout_s=dead_peer_timeout_s,
            http_error=error_from_rest,
            secrets=secrets,
        )
        return cls(websocket, url=url, shared=shared, secrets=secrets)

    @property
    def closed(self) -> bool:
        return self._reader.done()

    def accepts(self) -> bool:
        return self.shared and not self.closed and len(self._inboxes) < MAX_CONTEXTS

    def open_context(self, context_id: str) -> Inbox:
        """Route messages of ``context_id`` to a new inbox."""
        if self._error is not None:
            raise self._error
        inbox: Inbox = asyncio.Queue()
        self._inboxes[context_id] = inbox
        self.contexts_started += 1
        return inbox

    async def send(self, message: dict[str, Any], context_id: str) -> None:
        """Send ``message``; a closed socket raises the context's typed error."""
        try:
            await self._websocket.send(json.dumps(message))
        except WebSocketClosed as exc:
            await asyncio.wait([self._reader], timeout=1.0)  # the reader knows best why the socket closed
            inbox = self._inboxes.get(context_id)
            while inbox is not None and not inbox.empty():
                item = inbox.get_nowait()
                if isinstance(item, SpeechBridgeError):
                    raise item from None
            raise self._error or self._closed(exc) from None

    async def release(self, context_id: str, *, finished: bool) -> None:
        """Stop routing ``context_id``; an unfinished context is closed (its pending audio dropped)."""
        was_open = self._inboxes.pop(context_id, None) is not None
        if was_open and not finished and not self.closed:
            with contextlib.suppress(Exception):
                await self._websocket.send(json.dumps(client_close_context(context_id)))
        if not self.shared:
            await self.aclose()

    async def aclose(self) -> None:
        self._fail_all(TransportError(f"the connection to {self.url} was closed", provider=PROVIDER))
        with contextlib.suppress(Exception):
            await self._websocket.send(json.dumps(client_close_socket()))
        with contextlib.suppress(Exception):
            await self._websocket.close()
        if not self._reader.done():
            self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def _closed(self, exc: WebSocketClosed) -> SpeechBridgeError:
        return closed_error(exc, provider=PROVIDER, mapper=error_from_close, secrets=self._secrets)

    async def _read(self) -> None:
        try:
            async for frame in self._websocket:
                self._route(parse_tts_server_message(frame))
        except WebSocketClosed as exc:
            self._fail_all(self._closed(exc))
        except SpeechBridgeError as exc:
            self._fail_all(exc)
            await self._websocket.close(1002, "malformed message")
        else:
            self._fail_all(TransportError("the server closed the connection", provider=PROVIDER))

    def _route(self, message: TTSServerMessage) -> None:
        context_id = message.context_id
        if context_id is None and len(self._inboxes) == 1:
            context_id = next(iter(self._inboxes))
        if isinstance(message, TTSErrorOut):
            error = scrub_error(message.to_error(), self._secrets)
            if context_id in self._inboxes:
                self._inboxes[context_id].put_nowait(error)
            else:
                self._error = error
                self._fail_all(error)
            return
        inbox = self._inboxes.get(context_id) if context_id is not None else None
        if inbox is None:
            log.debug("dropped a message for no open context on %s", self.url)
            return
        inbox.put_nowait(message)
        if message.is_final:
            self._inboxes.pop(context_id, None)  # type: ignore[arg-type]

    def _fail_all(self, error: SpeechBridgeError) -> None:
        for inbox in self._inboxes.values():
            inbox.put_nowait(error)


class TTSSocketPool:
    """The sockets of one provider: one per stream, or shared by URL when ``multiplex``."""

    def __init__(self, credentials: Credentials, *, dead_peer_timeout_s: float = 10.0) -> None:
        self.credentials = credentials
        self.dead_peer_timeout_s = dead_peer_timeout_s
        self._shared: dict[str, list[TTSSocket]] = {}
        self._single: set[TTSSocket] = set()
        self._lock = asyncio.Lock()

    async def socket_for(self, url: str, *, multiplex: bool, timeout_s: float) -> TTSSocket:
        if not multiplex:
            socket = await TTSSocket.connect(
                url, self.credentials, shared=False, timeout_s=timeout_s, dead_peer_timeout_s=self.dead_peer_timeout_s
            )
            self._single = {s for s in self._single if not s.closed} | {socket}
            return socket
        async with self._lock:
            sockets = [s for s in self._shared.get(url, []) if not s.closed]
            reusable = next((s for s in sockets if s.accepts()), None)
            if reusable is None:
                reusable = await TTSSocket.connect(
                    url,
                    self.credentials,
                    shared=True,
                    timeout_s=timeout_s,
                    dead_peer_timeout_s=self.dead_peer_timeout_s,
                )
                sockets.append(reusable)
            self._shared[url] = sockets
            return reusable

    def sockets(self, url: str) -> list[TTSSocket]:
        """The open shared sockets to ``url``."""
        return [s for s in self._shared.get(url, []) if not s.closed]

    async def aclose(self) -> None:
        sockets = [s for group in self._shared.values() for s in group] + list(self._single)
        self._shared.clear()
        self._single.clear()
        await asyncio.gather(*(s.aclose() for s in sockets), return_exceptions=True)
