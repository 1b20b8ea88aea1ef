"""Network faults for tests: a TCP proxy that cuts or stalls connections, below any vendor's protocol.

Put :class:`ChaosProxy` between a client and any server (a vendor front run by :class:`~.servers.LiveServer`, a real
local service) and plan what goes wrong with the next connections::

    async with LiveServer(app) as server, ChaosProxy(server.url, seed=7) as proxy:
        proxy.cut(after=(2_000, 60_000))  # the next connection is cut somewhere within its first 60 kB
        stt = GradiumSTT(api_key=KEY, base_url=proxy.url + "/api")
        ...
        assert proxy.connections == 2 and proxy.faults[0].kind == "cut"

A cut aborts both sides at once (TCP reset, no WebSocket close frame: what a network failure looks like); a stall
stops forwarding in both directions and keeps the sockets open (a dead peer, found only by timeouts or missed pings).
Bytes count in both directions together, from the start of the connection.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from types import TracebackType
from typing import Final, Literal, Self
from urllib.parse import urlsplit

import attrs

from ..errors import ConfigError

__all__ = ["ChaosProxy", "Fault"]

FaultKind = Literal["cut", "stall"]
READ_BYTES: Final = 65536
STOP_TIMEOUT_S: Final = 2.0


@attrs.frozen
class Fault:
    """A fault that happened: to connection number ``connection`` (from 0), once ``after_bytes`` had passed."""

    kind: FaultKind
    connection: int
    after_bytes: int


class _Link:
    """One client connection and its upstream twin."""

    def __init__(self, number: int, kind: FaultKind | None, limit: int | None) -> None:
        self.number = number
        self.kind = kind
        self.limit = limit
        self.forwarded = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.stalled = False
        self.released = asyncio.Event()  # set when the proxy stops or the link is cut

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.released.set()


class ChaosProxy:
    """A TCP proxy on ``host`` (a free port) to ``target`` that cuts or stalls the connections it is told to.

    ``target`` is a URL (``http://127.0.0.1:8000``, ``ws://...``) or ``host:port``; :attr:`url` and :attr:`ws_url` are
    the same with the proxy's address. Faults planned with :meth:`cut` and :meth:`stall` apply to the next
    connections in order; a random point, when asked for, comes from ``seed``.
    """

    def __init__(self, target: str, *, seed: int | None = None, host: str = "127.0.0.1") -> None:
        parts = urlsplit(target if "://" in target else f"tcp://{target}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ConfigError(
                f"ChaosProxy needs a target with a host and a port, such as http://127.0.0.1:8000, not {target!r}"
            )
        self.target_host, self.target_port = parts.hostname, port
        self.host = host
        self.port = 0
        self.connections = 0
        self.bytes_forwarded = 0  # by every connection, both ways
        self.faults: list[Fault] = []
        self._target = parts
        self._random = random.Random(seed)
        self._plan: deque[tuple[FaultKind, int | tuple[int, int]]] = deque()
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The target URL with the proxy's address (``http://127.0.0.1:port`` for a bare ``host:port`` target)."""
        scheme = "http" if self._target.scheme == "tcp" else self._target.scheme
        return self._target._replace(scheme=scheme, netloc=self._authority()).geturl()

    @property
    def ws_url(self) -> str:
        """:attr:`url` with a WebSocket scheme (``ws``, or ``wss`` for an ``https``/``wss`` target)."""
        secure = self._target.scheme in ("https", "wss")
        return self._target._replace(scheme="wss" if secure else "ws", netloc=self._authority()).geturl()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def _authority(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not running: use it inside 'async with ChaosProxy(...)'")
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def cut(self, after: int | tuple[int, int] = 0, *, connections: int = 1) -> None:
        """Cut each of the next ``connections`` connections once ``after`` bytes have passed (a ``(low, high)``
        pair: a random point in it, drawn for each connection)."""
        self._add("cut", after, connections)

    def stall(self, after: int | tuple[int, int] = 0, *, connections: int = 1) -> None:
        """Stall each of the next ``connections`` connections once ``after`` bytes have passed: nothing more is
        forwarded either way, and both sockets stay open until the proxy stops or :meth:`cut_open` is called."""
        self._add("stall", after, connections)

    def clear(self) -> None:
        """Forget the faults planned for connections not made yet."""
        self._plan.clear()

    def cut_open(self) -> int:
        """Cut every open connection now; returns how many there were."""
        links = list(self._links)
        for link in links:
            self.faults.append(Fault("cut", link.number, link.forwarded))
            link.cut()
        return len(links)

    def stall_open(self) -> int:
        """Stall every open connection now (nothing more is forwarded); returns how many there were."""
        links = [link for link in self._links if not link.stalled]
        for link in links:
            self.faults.append(Fault("stall", link.number, link.forwarded))
            link.stalled = True
        return len(links)

    def _add(self, kind: FaultKind, after: int | tuple[int, int], connections: int) -> None:
        low, high = after if isinstance(after, tuple) else (after, after)
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in (low, high, connections)):
            raise ConfigError(f"{kind}: after takes a byte count or a (low, high) pair, and connections a count")
        if not 0 <= low <= high or connections < 1:
            raise ConfigError(
                f"{kind}: need 0 <= low <= high bytes and at least 1 connection, not {after!r}, {connections!r}"
            )
        self._plan.extend([(kind, after)] * connections)

    async def start(self) -> None:
        """Listen; returns once the port is bound."""
        if self._server is not None:
            raise RuntimeError("this ChaosProxy is already running")
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is None:
            return
        self._server.close()
        for link in list(self._links):
            link.cut()
        if self._handlers:  # cut connections end their handlers (cancelling them upsets asyncio's streams on 3.11)
            await asyncio.wait(self._handlers, timeout=STOP_TIMEOUT_S)
        for task in self._handlers:
            task.cancel()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        number, self.connections = self.connections, self.connections + 1
        kind, limit = None, None
        if self._plan:
            kind, after = self._plan.popleft()
            limit = self._random.randint(*after) if isinstance(after, tuple) else after
        link = _Link(number, kind, limit)
        link.writers.append(client_writer)
        self._links.add(link)
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:
                client_writer.transport.abort()
                return
            link.writers.append(upstream_writer)
            await asyncio.gather(
                self._pump(link, client_reader, upstream_writer), self._pump(link, upstream_reader, client_writer)
            )
        finally:
            self._links.discard(link)
            for writer in link.writers:
                writer.transport.abort()
            self._handlers.discard(task)

    async def _pump(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not (link.stalled or link.released.is_set()):
                data = await reader.read(READ_BYTES)
                if link.stalled or link.released.is_set():
                    break
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if link.limit is not None and link.forwarded + len(data) > link.limit:
                    await self._fire(link, writer, data[: link.limit - link.forwarded])
                    break
                link.forwarded += len(data)
                self.bytes_forwarded += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            link.cut()  # one side broke off: so does the other
            return
        if link.stalled:
            await link.released.wait()

    async def _fire(self, link: _Link, writer: asyncio.StreamWriter, last: bytes) -> None:
        """Forward ``last`` (what fits in the limit), then apply the link's fault."""
        assert link.kind is not None and link.limit is not None
        if last:
            writer.write(last)
            link.forwarded += len(last)
            self.bytes_forwarded += len(last)
            await writer.drain()
        self.faults.append(Fault(link.kind, link.number, link.forwarded))
        if link.kind == "cut":
            link.cut()
        else:
            link.stalled = True
