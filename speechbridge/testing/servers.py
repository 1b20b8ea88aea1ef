"""Run an ASGI app on a real local socket inside the current event loop, for tests.

>>> async with LiveServer(make_app(ScriptedSTT(script="hi"), None)) as server:
...     async with websockets.connect(server.ws_url + "/api/speech/asr") as ws: ...

The server listens on ``127.0.0.1`` and a free port chosen by the OS. Leaving the block stops it, closing any open
WebSocket with 1012 (service restart) and cancelling handlers that do not finish within ``shutdown_timeout``.
WebSockets are served by uvicorn's ``websockets-sansio`` protocol; a WebSocket handler that returns without closing
makes the server drop the TCP connection with no close frame (what a fault-injecting front uses). The process's
signal handlers are left alone. Needs the ``server`` extra (uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Final, Self

from ..errors import MissingDependency, TransportError
from ..serving import redact_server_logs

__all__ = ["LiveServer", "ThreadedServer"]

STARTUP_TIMEOUT_S: Final = 10.0


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as error:
        raise MissingDependency("uvicorn", "server") from error
    return uvicorn


class LiveServer:
    """An ASGI app served by uvicorn on a local port for the duration of an ``async with`` block.

    ``url`` is ``http://host:port`` and ``ws_url`` is ``ws://host:port``, both without a trailing slash.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, shutdown_timeout: float = 2.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The base HTTP URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self._authority()}"

    @property
    def ws_url(self) -> str:
        """The base WebSocket URL, e.g. ``ws://127.0.0.1:54321``."""
        return f"ws://{self._authority()}"

    def _authority(self) -> str:
        if self._server is None or not self._server.started:
            raise RuntimeError("the server is not running: use it inside 'async with LiveServer(app)'")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Start serving; returns once the socket is bound and accepting."""
        if self._task is not None:
            raise RuntimeError("this LiveServer is already running")
        uvicorn = _uvicorn()
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="auto",
            timeout_graceful_shutdown=self.shutdown_timeout,
        )
        redact_server_logs()
        self._server = uvicorn.Server(config)
        self._server.capture_signals = contextlib.nullcontext  # leave the process's signal handlers alone
        self._task = asyncio.create_task(self._serve(), name=f"LiveServer {self.host}")
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                while not self._server.started:
                    if self._task.done():
                        break
                    await asyncio.sleep(0.01)
        except TimeoutError:
            await self.stop()
            raise TransportError(f"the server on {self.host} did not start within {STARTUP_TIMEOUT_S} s") from None
        if not self._server.started:
            task, self._task = self._task, None
            await task  # raises the reason it stopped
            raise TransportError(f"the server on {self.host}:{self.port} stopped while starting")
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind or the app's startup fails
            raise TransportError(f"the server could not listen on {self.host}:{self.port}") from None

    async def stop(self) -> None:
        """Stop serving and wait until every connection is closed."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.shutdown_timeout + 3)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            self._task = None
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class ThreadedServer:
    """A :class:`LiveServer` on its own event loop in a thread, used as a plain ``with`` block.

    For tests whose client is synchronous (a vendor's sync SDK) or that check their own loop leaves no task behind.
    ``closing`` are providers (or anything with ``aclose()``) closed on the server's loop when it stops.
    """

    def __init__(self, app: Any, *, closing: Iterable[Any] = (), start_timeout: float = 30.0) -> None:
        self.app = app
        self.url = ""
        self._closing = [item for item in closing if item is not None]
        self._start_timeout = start_timeout
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="speechbridge test server", daemon=True)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._error = error
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with LiveServer(self.app) as server:
                self.url = server.url
                self._started.set()
                await self._stop.wait()
        finally:
            for item in self._closing:
                await item.aclose()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._started.wait(self._start_timeout) or not self.url:
            raise TransportError(f"the test server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self._start_timeout)
        if self._error is not None:
            raise self._error
