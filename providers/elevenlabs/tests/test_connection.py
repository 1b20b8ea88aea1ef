"""TTS socket routing against a bare scripted ElevenLabs socket: errors fail the context they name, or all of them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from speechbridge_elevenlabs.protocol import Alignment, server_audio, server_is_final, server_tts_error
from speechbridge_elevenlabs.tts import ElevenLabsTTS
from websockets.asyncio.server import ServerConnection, serve

from speechbridge.errors import InvalidRequest, ProtocolError, ProviderError, QuotaExceeded, TransportError
from speechbridge.events import AudioChunk, StreamEnded, WordTiming
from speechbridge.testing.contract import within

Handler = Callable[[ServerConnection, dict[str, Any]], Any]


@pytest.fixture
async def socket_server() -> AsyncIterator[Callable[[Handler], Any]]:
    """Start a WebSocket server whose ``handler(websocket, message)`` answers each client message."""
    servers = []

    async def start(handler: Handler) -> str:
        async def session(websocket: ServerConnection) -> None:
            async for frame in websocket:
                await handler(websocket, json.loads(frame))

        server = await serve(session, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def speak(tts: ElevenLabsTTS, text: str) -> list[Any]:
    async with tts.stream(format="pcm_16000") as stream:
        await stream.send_text(text)
        await stream.end()
        return await within(stream.collect())


async def test_an_error_naming_a_context_fails_only_that_stream(socket_server: Any) -> None:
    async def handler(websocket: ServerConnection, message: dict[str, Any]) -> None:
        context = message.get("context_id")
        text = message.get("text") or ""
        if text.startswith("fail"):
            await websocket.send(json.dumps(server_tts_error("quota_exceeded", "out of characters", 1008, context)))
        elif text.strip():
            alignment = Alignment.of_words(text, [(text.strip(), 0.0, 0.1)])
            await websocket.send(json.dumps(server_audio(bytes(3200), alignment, context)))
        elif message.get("close_context"):
            await websocket.send(json.dumps(server_is_final(context)))

    url = await socket_server(handler)
    async with ElevenLabsTTS(api_key="k", base_url=url, multiplex=True) as tts:
        good = await speak(tts, "fine")
        with pytest.raises(QuotaExceeded, match="out of characters"):
            await speak(tts, "failing")
        again = await speak(tts, "still")
        assert len(tts.pool.sockets(tts.stream(format="pcm_16000").url)) == 1
    for events, word in ((good, "fine"), (again, "still")):
        assert [event.text for event in events if isinstance(event, WordTiming)] == [word]
        assert sum(len(e.data) for e in events if isinstance(e, AudioChunk)) == 3200
        assert isinstance(events[-1], StreamEnded)


async def test_an_error_naming_no_context_fails_the_socket(socket_server: Any) -> None:
    async def handler(websocket: ServerConnection, message: dict[str, Any]) -> None:
        if (message.get("text") or "").strip():
            await websocket.send(json.dumps({"message": "bad input", "error": "invalid_request", "code": 1008}))
            await websocket.close(1008, "invalid_request")

    async with ElevenLabsTTS(api_key="k", base_url=await socket_server(handler)) as tts:
        with pytest.raises(InvalidRequest, match="bad input"):
            await speak(tts, "hello")


async def test_a_dropped_socket_is_a_transport_error_and_1011_is_retryable(socket_server: Any) -> None:
    async def drop(websocket: ServerConnection, message: dict[str, Any]) -> None:
        if (message.get("text") or "").strip():
            await websocket.close(1011, "internal")

    async with ElevenLabsTTS(api_key="k", base_url=await socket_server(drop)) as tts:
        with pytest.raises(ProviderError) as info:
            await speak(tts, "hello")
    assert info.value.retryable and info.value.code == 1011

    async def vanish(websocket: ServerConnection, message: dict[str, Any]) -> None:
        if (message.get("text") or "").strip():
            await websocket.close(1000)

    async with ElevenLabsTTS(api_key="k", base_url=await socket_server(vanish)) as tts:
        with pytest.raises(TransportError):
            await speak(tts, "hello")


async def test_malformed_frames_are_protocol_errors(socket_server: Any) -> None:
    async def garble(websocket: ServerConnection, message: dict[str, Any]) -> None:
        if (message.get("text") or "").strip():
            await websocket.send('{"audio": "***not base64***"}')

    async with ElevenLabsTTS(api_key="k", base_url=await socket_server(garble)) as tts:
        with pytest.raises(ProtocolError, match="base64"):
            await speak(tts, "hello")
