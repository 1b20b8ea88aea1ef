from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from speechbridge.errors import TransportError
from speechbridge.testing import LiveServer, ThreadedServer


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: answers its path. WebSocket: echoes text until the client leaves."""
    if scope["type"] == "lifespan":
        await receive()  # startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # shutdown
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
    else:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})


async def test_serves_http_and_websocket_on_a_free_port() -> None:
    async with LiveServer(echo_app) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as client:
            response = await client.get(server.url + "/some/path")
        assert response.text == "/some/path"
        async with websockets.connect(server.ws_url + "/ws") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"


async def test_two_servers_run_side_by_side() -> None:
    async with LiveServer(echo_app) as first, LiveServer(echo_app) as second:
        assert first.port != second.port
        async with httpx.AsyncClient() as client:
            assert (await client.get(first.url + "/a")).text == "/a"
            assert (await client.get(second.url + "/b")).text == "/b"


async def test_shutdown_closes_open_websockets_and_frees_the_port() -> None:
    server = LiveServer(echo_app)
    async with server:
        port = server.port
        ws = await websockets.connect(server.ws_url + "/ws")
        await ws.send("still here")
        assert await ws.recv() == "still here"
        stopping = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - stopping < 3
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 2)
    assert ws.close_code == 1012
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/")


async def test_urls_are_only_known_while_running() -> None:
    server = LiveServer(echo_app)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    async with server:
        assert server.url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.ws_url


async def test_a_busy_port_is_a_transport_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TransportError, match=f"could not listen on 127.0.0.1:{port}"):
            async with LiveServer(echo_app, port=port):
                pass


class Closable:
    def __init__(self) -> None:
        self.closed_on: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        self.closed_on = asyncio.get_running_loop()


def test_a_threaded_server_serves_synchronous_clients_and_closes_what_it_was_given() -> None:
    closable = Closable()
    with ThreadedServer(echo_app, closing=[closable, None]) as server:
        assert httpx.get(server.url + "/from/a/thread").text == "/from/a/thread"
        assert server.ws_url == "ws" + server.url.removeprefix("http")
        assert closable.closed_on is None
    assert closable.closed_on is not None  # closed on the server's own loop, when it stopped
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)
