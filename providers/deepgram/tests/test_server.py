"""The Deepgram front on the wire: what a raw client sees (handshakes, close codes, REST errors), and its plugin."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from speechbridge_deepgram.server import make_app
from websockets.exceptions import ConnectionClosed, InvalidStatus

from speechbridge import plugins
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, SpeechSample

KEY = "front-test-key"
AUTH = {"Authorization": f"Token {KEY}"}


@pytest.fixture
async def server(speech_sample: SpeechSample) -> AsyncIterator[LiveServer]:
    stt = ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words)
    async with LiveServer(make_app(stt, ScriptedTTS(), api_keys=[KEY])) as live:
        yield live


def test_registered_from_the_installed_distribution() -> None:
    registry = plugins.build_registry(plugins.plugin_manager())
    front = next(front for front in registry.fronts() if front.name == "deepgram")
    assert front.distribution == "speechbridge-deepgram"
    assert "speechbridge_deepgram.server.make_app" in (front.factory.__doc__ or "")
    assert registry.stt("deepgram").__name__ == "DeepgramSTT"
    assert registry.tts("deepgram").__name__ == "DeepgramTTS"


async def test_browser_credentials_come_as_subprotocols(server: LiveServer) -> None:
    url = server.ws_url + "/v1/listen?encoding=linear16&sample_rate=16000"
    async with websockets.connect(url, subprotocols=["token", KEY]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "token"
        await ws.send(json.dumps({"type": "CloseStream"}))
        assert json.loads(await ws.recv())["type"] == "Metadata"
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(url, subprotocols=["token", "wrong"])  # type: ignore[list-item]
    assert info.value.response.status_code == 401


async def _close_of(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


@pytest.mark.parametrize(
    ("query", "frame", "code", "reason"),
    [
        ("", b"\0\0", 1008, "DATA-0000"),
        ("encoding=speex&sample_rate=16000", b"\0\0", 1008, "linear16, mulaw, alaw"),
        ("encoding=linear16&sample_rate=16000", b"", 1000, ""),
    ],
)
async def test_listen_socket_closes_with_deepgram_codes(
    server: LiveServer, query: str, frame: Any, code: int, reason: str
) -> None:
    async with websockets.connect(f"{server.ws_url}/v1/listen?{query}", additional_headers=AUTH) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)
        closed = await _close_of(ws)
    assert closed[0] == code and reason in closed[1]


async def test_configure_and_unreadable_messages_are_answered_in_band(server: LiveServer) -> None:
    url = server.ws_url + "/v1/listen?encoding=linear16&sample_rate=16000"
    async with websockets.connect(url, additional_headers=AUTH) as ws:
        await ws.send(json.dumps({"type": "Configure", "keyterms": ["x"]}))
        configured = json.loads(await ws.recv())
        await ws.send("{not json")
        unreadable = json.loads(await ws.recv())
        await ws.send('{"type": "Dance"}')
        unknown = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "CloseStream"}))
        assert json.loads(await ws.recv())["type"] == "Metadata"
    assert configured["type"] == "ConfigureFailure" and configured["code"] == "CONFIGURE_KEYTERMS_NOT_SUPPORTED"
    assert (unreadable["type"], unreadable["variant"], unreadable["message"]) == ("Error", "SchemaError", "{not json")
    assert unknown["type"] == "Error" and "Dance" in unknown["description"]


async def test_speak_socket_refuses_what_deepgram_refuses(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(f"{server.ws_url}/v1/speak?encoding=mp3", additional_headers=AUTH)
    assert info.value.response.status_code == 400
    async with websockets.connect(f"{server.ws_url}/v1/speak", additional_headers=AUTH) as ws:
        assert json.loads(await ws.recv())["type"] == "Metadata"
        await ws.send(b"binary")
        code, reason = await _close_of(ws)
    assert code == 1008 and "binary" in reason


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "message"),
    [
        ("/v1/listen", {"content": b""}, 400, "no audio"),
        ("/v1/listen", {"content": b"plain text, not audio"}, 400, "failed to process audio"),
        ("/v1/listen", {"json": {"url": "https://example.com/a.wav"}}, 400, "not URLs"),
        ("/v1/listen?encoding=linear16", {"content": b"\0\0"}, 400, "sample_rate"),
        ("/v1/speak", {"json": {}}, 400, "text"),
        ("/v1/speak?model=robot", {"json": {"text": "hi"}}, 400, "robot"),
        ("/v1/speak?speed=fast", {"json": {"text": "hi"}}, 400, "speed"),
        ("/v1/auth/grant", {"json": {"ttl_seconds": 0}}, 400, "ttl_seconds"),
    ],
)
async def test_rest_errors_have_deepgram_bodies(
    server: LiveServer, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as client:
        response = await client.post(path, **kwargs)
    body = response.json()
    assert response.status_code == status and set(body) == {"err_code", "err_msg", "request_id"}
    assert message in body["err_msg"]


async def test_grants_need_a_key_and_tokens_expire_never_early(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        grant = (await client.post("/v1/auth/grant", headers=AUTH)).json()
        assert grant["expires_in"] == 30
        bearer = {"Authorization": f"bearer {grant['access_token']}"}
        assert (await client.post("/v1/auth/grant", headers=bearer)).status_code == 401
        spoken = await client.post("/v1/speak?encoding=linear16&container=none", headers=bearer, json={"text": "hi"})
        assert spoken.status_code == 200 and spoken.headers["content-type"] == "application/octet-stream"
        missing = await client.post("/v1/speak", json={"text": "hi"})
        assert missing.status_code == 401


async def test_a_front_without_a_backend_says_so() -> None:
    async with (
        LiveServer(make_app(None, None)) as live,
        httpx.AsyncClient(base_url=live.url, headers=AUTH) as client,
    ):
        assert (await client.post("/v1/listen", content=b"x")).status_code == 404
        assert (await client.post("/v1/speak", json={"text": "hi"})).status_code == 404
