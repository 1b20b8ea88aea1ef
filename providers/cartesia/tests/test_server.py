"""The Cartesia front on the wire: what legacy and current clients send, errors, contexts, and the plugin."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from speechbridge_cartesia.server import make_app
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from speechbridge import plugins
from speechbridge.testing import ScriptedSTT, ScriptedTTS, SpeechSample
from speechbridge.testing.contract import within

OUTPUT = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}


def generation(context: str, transcript: str, **fields: Any) -> str:
    request = {"context_id": context, "model_id": "sonic-3", "transcript": transcript, "voice": {"mode": "id",
               "id": "sine"}, "output_format": OUTPUT, "continue": True, **fields}  # fmt: skip
    return json.dumps(request)


async def messages_until(socket: ClientConnection, done: Any) -> list[dict[str, Any]]:
    """Messages up to the first for which ``done(message)`` is true."""
    received: list[dict[str, Any]] = []
    while not received or not done(received[-1]):
        received.append(json.loads(await within(socket.recv())))
    return received


@pytest.fixture
async def rest() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(ScriptedSTT(script="hello world"), ScriptedTTS(), api_keys=["right"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front") as client:
        yield client


# --- plugin -----------------------------------------------------------------------------------------------------


def test_registered_from_the_installed_distribution() -> None:
    registry = plugins.build_registry(plugins.plugin_manager())
    front = next(front for front in registry.fronts() if front.name == "cartesia")
    assert front.distribution == "speechbridge-cartesia"
    assert "speechbridge_cartesia.server.make_app" in (front.factory.__doc__ or "")
    assert registry.stt("cartesia").__name__ == "CartesiaSTT"
    assert registry.tts("cartesia").__name__ == "CartesiaTTS"


# --- REST -------------------------------------------------------------------------------------------------------


async def test_rest_auth_takes_bearer_or_x_api_key(rest: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": "Bearer right"}, {"X-API-Key": "right"}):
        assert (await rest.get("/voices", headers=headers)).status_code == 200
    refused = await rest.get("/voices", headers={"X-API-Key": "wrong"})
    assert refused.status_code == 401 and refused.json()["title"] == "Unauthorized"


async def test_stt_rest_errors_are_cartesia_json(rest: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": "right"}
    no_file = await rest.post("/stt", headers=headers, data={"model": "ink-whisper"}, files={"x": ("a", b"1")})
    assert no_file.status_code == 400 and "'file'" in no_file.json()["message"]
    not_audio = await rest.post("/stt", headers=headers, files={"file": ("a.wav", b"not audio", "audio/wav")})
    assert not_audio.status_code == 400 and not_audio.json()["error_code"] == "invalid_request"
    bad_encoding = await rest.post(
        "/stt?encoding=pcm_s24le&sample_rate=16000", headers=headers, files={"file": ("a", bytes(64), "x/y")}
    )
    assert bad_encoding.status_code == 400 and "pcm_s16le" in bad_encoding.json()["message"]
    not_form = await rest.post("/stt", headers=headers, content=b"{}")
    assert not_form.status_code == 400 and "multipart" in not_form.json()["message"]


async def test_tts_rest_containers_errors_and_tokens(rest: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": "right"}
    body = {"model_id": "sonic-3", "transcript": "Hello", "voice": {"mode": "id", "id": "sine"}}
    wav = await rest.post("/tts/bytes", headers=headers, json={**body, "output_format": {**OUTPUT, "container": "wav"}})
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF" and wav.headers["content-type"] == "audio/wav"
    sse_wav = await rest.post(
        "/tts/sse", headers=headers, json={**body, "output_format": {**OUTPUT, "container": "wav"}}
    )
    assert sse_wav.status_code == 400 and "raw" in sse_wav.json()["message"]
    empty = await rest.post("/tts/bytes", headers=headers, json={**body, "transcript": " ", "output_format": OUTPUT})
    assert empty.status_code == 400
    unknown = await rest.post("/tts/bytes", headers=headers, json={**body, "voice": "x", "output_format": OUTPUT})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "voice_not_found"
    bad = await rest.post("/access-token", headers=headers, json={"grants": {"tts": True}, "expires_in": 7200})
    assert bad.status_code == 400
    token = (await rest.post("/access-token", headers=headers, json={"grants": {"tts": True}})).json()["token"]
    spoken = await rest.post("/tts/bytes", headers={"Authorization": f"Bearer {token}"},
                             json={**body, "output_format": OUTPUT})  # fmt: skip
    assert spoken.status_code == 200 and len(spoken.content) > 3200


# --- STT WebSocket ----------------------------------------------------------------------------------------------


async def test_legacy_query_auth_and_done_close(scripted_front: Any, speech_sample: SpeechSample) -> None:
    ws = scripted_front.url.replace("http", "ws", 1)
    query = f"model=ink-whisper&encoding=pcm_s16le&sample_rate=16000&api_key={scripted_front.key}"
    async with connect(f"{ws}/stt/websocket?{query}&cartesia_version=2024-11-13") as socket:
        await socket.send(speech_sample.audio.data)
        await socket.send("done")
        received = await messages_until(socket, lambda message: message["type"] == "done")
    finals = [message["text"] for message in received if message["type"] == "transcript" and message["is_final"]]
    assert "".join(finals) == speech_sample.text


async def test_stt_socket_refusals(scripted_front: Any) -> None:
    ws = scripted_front.url.replace("http", "ws", 1)
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{ws}/stt/websocket?encoding=pcm_s16le&sample_rate=16000&api_key=wrong"):
            pass
    assert info.value.response.status_code == 401
    for query, words in (("model=nova-3&encoding=pcm_s16le&sample_rate=16000", "Invalid model"),
                         ("encoding=pcm_f16le&sample_rate=16000", "not supported"),
                         ("sample_rate=16000", "encoding")):  # fmt: skip
        async with connect(f"{ws}/stt/websocket?{query}&api_key={scripted_front.key}") as socket:
            error = json.loads(await within(socket.recv()))
            assert error["type"] == "error" and error["status_code"] == 400 and words in error["message"]
            await within(socket.wait_closed())
            assert socket.close_code == 1008


async def test_an_unknown_command_is_an_error(scripted_front: Any) -> None:
    ws = scripted_front.url.replace("http", "ws", 1)
    async with connect(f"{ws}/stt/websocket?encoding=pcm_s16le&sample_rate=16000&api_key={scripted_front.key}") as s:
        await s.send("pause")
        error = json.loads(await within(s.recv()))
    assert error["type"] == "error" and "finalize" in error["message"]


# --- TTS WebSocket ----------------------------------------------------------------------------------------------


async def test_contexts_interleave_and_cancel_on_one_socket(scripted_front: Any) -> None:
    ws = scripted_front.url.replace("http", "ws", 1)
    async with connect(f"{ws}/tts/websocket", additional_headers={"X-API-Key": scripted_front.key}) as socket:
        await socket.send(generation("a", "Hello "))
        await socket.send(generation("b", "Good ", add_timestamps=True))
        await socket.send(generation("c", "never spoken because it is cancelled"))
        await socket.send(json.dumps({"context_id": "c", "cancel": True}))
        await socket.send(generation("a", "world", stream=True, duration=None, language=None,
                                     generation_config=None, pronunciation_dict_id=None))  # fmt: skip
        await socket.send(json.dumps({"context_id": "b", "transcript": "day", "continue": False}))
        await socket.send(json.dumps({"context_id": "a", "transcript": "", "continue": False}))
        done: set[str] = set()

        def both_done(message: dict[str, Any]) -> bool:
            if message["type"] == "done":
                done.add(message["context_id"])
            return done == {"a", "b"}

        received = await messages_until(socket, both_done)
    by_context: dict[str, list[dict[str, Any]]] = {}
    for message in received:
        by_context.setdefault(message["context_id"], []).append(message)
    assert all(message["type"] == "chunk" for message in by_context.pop("c", []))  # audio before the cancel only
    for context, messages in by_context.items():
        assert messages[-1]["type"] == "done" and all(m["type"] != "error" for m in messages), context
        assert sum(len(base64.b64decode(m["data"])) for m in messages if m["type"] == "chunk") > 3200
    words = [w for m in by_context["b"] if m["type"] == "timestamps" for w in m["word_timestamps"]["words"]]
    assert words == ["Good", "day"] and not any(m["type"] == "timestamps" for m in by_context["a"])


async def test_context_errors_keep_the_socket_open(scripted_front: Any) -> None:
    ws = scripted_front.url.replace("http", "ws", 1)
    async with connect(f"{ws}/tts/websocket?api_key={scripted_front.key}") as socket:
        await socket.send("{not json")
        assert json.loads(await within(socket.recv()))["status_code"] == 400
        await socket.send(generation("a", "Hi", voice={"mode": "embedding", "embedding": [0.1]}))
        error = json.loads(await within(socket.recv()))
        assert error["context_id"] == "a" and "voice mode" in error["message"]
        await socket.send(generation("b", "Hi", voice="nobody", **{"continue": False}))
        error = json.loads(await within(socket.recv()))
        assert (error["context_id"], error["status_code"], error["error_code"]) == ("b", 404, "voice_not_found")
        await socket.send(generation("c", "Hi", output_format={"container": "mp3", "sample_rate": 44100}))
        error = json.loads(await within(socket.recv()))
        assert error["context_id"] == "c" and "raw or wav" in error["message"]
        await socket.send(generation("d", "Hi", flush=True))
        flush = await messages_until(socket, lambda m: m["type"] == "flush_done")
        assert flush[-1]["flush_id"] == 1 and all(m["flush_id"] == 1 for m in flush if m["type"] == "chunk")
        await socket.send(generation("d", "", **{"continue": False}))
        assert (await messages_until(socket, lambda m: m["type"] == "done"))[-1]["context_id"] == "d"
        await socket.send(generation("d", "again", **{"continue": False}))
        again = await messages_until(socket, lambda m: m["type"] == "done")
        assert again[0]["type"] == "chunk" and again[-1]["context_id"] == "d"


async def test_a_tts_socket_with_a_wrong_key_is_refused(scripted_front: Any) -> None:
    ws = scripted_front.url.replace("http", "ws", 1)
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{ws}/tts/websocket", additional_headers={"Authorization": "Bearer wrong"}):
            pass
    assert info.value.response.status_code == 401
