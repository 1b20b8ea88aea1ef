"""The Gradium front on the wire: raw WebSocket and HTTP clients against a live server on 127.0.0.1.

Each test checks an item of the compatibility checklist (protocol notes §17) or one of the variants real clients
send. The backends are the scripted providers, so every word, time and step is known in advance.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Final

import attrs
import httpx
import numpy
import pytest
import pytest_asyncio
import soundfile
import websockets
from speechbridge_gradium.protocol import VAD_HORIZONS_S
from speechbridge_gradium.server import Faults, make_app
from websockets.exceptions import ConnectionClosed

from speechbridge.audio import AudioFormat, PCMAudio, decode, encode
from speechbridge.stt import STTCapabilities
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, SpeechSample
from speechbridge.testing.scripted import ScriptedTTSSettings, ToneSpeaker

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one event loop, so one server serves the module

KEY: Final = "test-key"
TIMEOUT_S: Final = 10.0
ODD_CHUNKS: Final = (317, 1001, 59, 4093)


class Socket:
    """A raw Gradium WebSocket client: JSON in and out, and what the close said."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def audio(self, data: bytes, sizes: tuple[int, ...] = (3200,), **extra: Any) -> None:
        offset, index = 0, 0
        while offset < len(data):
            size = sizes[index % len(sizes)]
            chunk = base64.b64encode(data[offset : offset + size]).decode()
            await self.send({"type": "audio", "audio": chunk, **extra})
            offset, index = offset + size, index + 1

    async def recv(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT_S))
        return message

    async def until(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        """Messages up to and including the first of ``kind`` (with the given fields)."""
        received = []
        while True:
            message = await self.recv()
            received.append(message)
            if message["type"] == kind and all(message.get(key) == value for key, value in match.items()):
                return received

    async def rest(self) -> list[dict[str, Any]]:
        """Every message until the server closes the socket."""
        received = []
        try:
            while True:
                received.append(await self.recv())
        except ConnectionClosed:
            return received

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(speech_sample: SpeechSample) -> AsyncIterator[LiveServer]:
    """A front of a scripted STT that hears the words of ``speech_sample``, and of a scripted TTS."""
    stt = ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words)
    async with LiveServer(make_app(stt, ScriptedTTS(), api_keys={KEY})) as live:
        yield live


async def connect(
    server: LiveServer, path: str = "/api/speech/asr", *, key: str | None = KEY, query: str = ""
) -> Socket:
    headers = {"x-api-key": key} if key is not None else {}
    ws = await websockets.connect(server.ws_url + path + query, additional_headers=headers)
    return Socket(ws)


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [message["type"] for message in messages]


def words(messages: list[dict[str, Any]]) -> list[str]:
    return [message["text"] for message in messages if message["type"] == "text"]


def audio_of(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(message["audio"]) for message in messages if message["type"] == "audio")


def tone_timings(text: str, **settings: Any) -> list[tuple[str, float, float]]:
    speaker = ToneSpeaker(ScriptedTTSSettings(**settings))
    return [(t.text, t.start_s, t.end_s) for t in (speaker.speak(word)[1] for word in text.split())]


async def transcribe(
    server: LiveServer, setup: dict[str, Any], data: bytes, sizes: tuple[int, ...] = (3200,)
) -> list[dict[str, Any]]:
    socket = await connect(server)
    await socket.send({"type": "setup", **setup})
    await socket.audio(data, sizes)
    await socket.send({"type": "end_of_stream"})
    messages = await socket.rest()
    assert socket.close_code == 1000, messages[-1:]
    return messages


# --- STT: setup and ready ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_format", "rate"),
    [
        ("pcm", 24000),
        ("pcm_16000", 16000),
        ("pcm_48000", 48000),
        ("ulaw_8000", 8000),
        ("alaw_8000", 8000),
        ("wav", 24000),
    ],
)
async def test_stt_ready_carries_every_field(server: LiveServer, input_format: str, rate: int) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "model_name": "default", "input_format": input_format})
    ready = await socket.recv()
    assert ready["type"] == "ready"
    assert uuid.UUID(ready["request_id"])
    assert ready["model_name"] == "default"
    assert ready["sample_rate"] == rate and ready["frame_size"] == round(rate * 0.08)
    assert ready["delay_in_frames"] == 10
    assert ready["text_stream_names"] == []
    await socket.ws.close()


async def test_setup_with_type_last_and_no_model_name(server: LiveServer) -> None:
    socket = await connect(server)
    await socket.send('{"input_format": "pcm", "json_config": "{\\"language\\": \\"en\\"}", "type": "setup"}')
    ready = await socket.recv()
    assert ready["type"] == "ready" and ready["model_name"] == "default"
    await socket.ws.close()


@pytest.mark.parametrize("as_string", [False, True], ids=["object", "string"])
async def test_json_config_as_object_or_string(server: LiveServer, as_string: bool) -> None:
    config: dict[str, Any] = {"language": "fr", "delay_in_frames": 24, "temp": 0.5, "padding_bonus": -1, "x": 1}
    socket = await connect(server)
    await socket.send(
        {"type": "setup", "input_format": "pcm_16000", "json_config": json.dumps(config) if as_string else config}
    )
    assert (await socket.recv())["delay_in_frames"] == 24
    await socket.ws.close()


async def test_delay_in_tokens_is_an_alias(server: LiveServer) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "pcm_16000", "json_config": {"delay_in_tokens": 32}})
    assert (await socket.recv())["delay_in_frames"] == 32
    await socket.ws.close()


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"language": "xx"}, "language"),
        ({"delay_in_frames": 9}, "delay_in_frames"),
        ({"delay_in_tokens": 9}, "delay_in_frames"),
        ({"temp": 1.5}, "temp"),
        ({"padding_bonus": 5}, "padding_bonus"),
        ("{not json", "json_config"),
        ([1, 2], "json_config"),
    ],
)
async def test_invalid_json_config_is_an_error_frame_then_close(server: LiveServer, config: Any, named: str) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "pcm_16000", "json_config": config})
    messages = await socket.rest()
    assert kinds(messages) == ["error"]
    assert named in messages[0]["message"]
    assert messages[0]["code"] == socket.close_code
    assert socket.close_code in (1003, 1008)


async def test_unsupported_input_format_names_the_accepted(server: LiveServer) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "mp3"})
    messages = await socket.rest()
    assert messages == [
        {"type": "error", "message": messages[0]["message"], "code": 1008},
    ]
    assert "'mp3'" in messages[0]["message"] and "pcm_16000" in messages[0]["message"]
    assert socket.close_code == 1008


@pytest.mark.parametrize(
    ("first", "code", "text"),
    [
        ({"type": "audio", "audio": "AAAA"}, 1008, "missing setup message"),
        ({"type": "end_of_stream"}, 1008, "missing setup message"),
        ("{not json", 1008, "not a JSON message"),
        ({"type": "dance"}, 1008, "unknown message type"),
        (b"\x00\x01", 1003, "binary frames"),
    ],
)
async def test_bad_first_messages(server: LiveServer, first: Any, code: int, text: str) -> None:
    socket = await connect(server)
    await socket.send(first)
    messages = await socket.rest()
    assert kinds(messages) == ["error"] and text in messages[0]["message"] and messages[0]["code"] == code
    assert socket.close_code == code


# --- STT: audio, text, steps, flush, end ------------------------------------------------------------------------


async def test_stt_words_steps_and_end(server: LiveServer, speech_sample: SpeechSample) -> None:
    messages = await transcribe(server, {"input_format": "pcm_16000"}, speech_sample.audio.data, ODD_CHUNKS)
    assert kinds(messages)[0] == "ready" and kinds(messages)[-1] == "end_of_stream"
    assert words(messages) == list(speech_sample.words)
    texts = [m for m in messages if m["type"] in ("text", "end_text")]
    assert kinds(texts) == ["text", "end_text"] * len(speech_sample.words)
    for text, end in zip(texts[::2], texts[1::2], strict=True):
        assert text["stream_id"] == 0 and end["stream_id"] == 0
        assert 0 <= text["start_s"] < end["stop_s"] <= speech_sample.audio.duration_s
    steps = [m for m in messages if m["type"] == "step"]
    assert len(steps) == -(-len(speech_sample.audio.data) // 2560)
    assert [step["step_idx"] for step in steps] == list(range(len(steps)))
    for step in steps:
        assert [entry["horizon_s"] for entry in step["vad"]] == list(VAD_HORIZONS_S)
        assert all(0.0 <= entry["inactivity_prob"] <= 1.0 for entry in step["vad"])
        assert step["step_duration_s"] == 0.08
        assert step["total_duration_s"] == pytest.approx((step["step_idx"] + 1) * 0.08)


async def test_words_wait_for_delay_in_frames_of_audio(server: LiveServer, speech_sample: SpeechSample) -> None:
    """A word goes out once delay_in_frames frames of audio have followed its end (or when it is final)."""
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "pcm_16000", "json_config": {"delay_in_frames": 7}})
    await socket.recv()
    data = speech_sample.audio.data
    first_word_end = None
    sent_s = 0.0
    for start in range(0, len(data), 2560):
        await socket.audio(data[start : start + 2560])
        sent_s += 0.08
        await asyncio.sleep(0.005)
        while True:
            try:
                message = json.loads(await asyncio.wait_for(socket.ws.recv(), 0.01))
            except TimeoutError:
                break
            if message["type"] == "end_text" and first_word_end is None:
                first_word_end = message["stop_s"]
                assert sent_s >= first_word_end + 7 * 0.08 - 1e-6
        if first_word_end is not None:
            break
    assert first_word_end is not None
    await socket.ws.close()


@pytest.mark.parametrize("flush_id", [7, 0, "1", "turn-2", 3.5])
async def test_flushed_echoes_the_id_after_all_text(
    server: LiveServer, speech_sample: SpeechSample, flush_id: Any
) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "pcm_16000"})
    half = len(speech_sample.audio.data) // 2 // 2 * 2
    await socket.audio(speech_sample.audio.data[:half])
    await socket.send({"type": "flush", "flush_id": flush_id})
    first = await socket.until("flushed")
    assert first[-1] == {"type": "flushed", "flush_id": flush_id}
    assert type(first[-1]["flush_id"]) is type(flush_id)
    heard = words(first)
    assert heard and heard == list(speech_sample.words[: len(heard)])
    await socket.audio(speech_sample.audio.data[half:])
    await socket.send({"type": "flush", "flush_id": flush_id})
    second = await socket.until("flushed")
    assert heard + words(second) == list(speech_sample.words)
    await socket.send({"type": "end_of_stream"})
    last = await socket.rest()
    assert kinds(last)[-1] == "end_of_stream" and words(last) == [] and socket.close_code == 1000


async def test_flush_before_any_audio_is_confirmed(server: LiveServer) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "wav"})
    await socket.recv()
    await socket.send({"type": "flush", "flush_id": 1})
    assert await socket.recv() == {"type": "flushed", "flush_id": 1}
    await socket.send({"type": "end_of_stream"})
    assert kinds(await socket.rest()) == ["end_of_stream"]
    assert socket.close_code == 1000


async def test_close_ws_on_eos_false_keeps_the_socket_for_the_next_setup(
    server: LiveServer, speech_sample: SpeechSample
) -> None:
    socket = await connect(server)
    for _ in range(2):
        await socket.send({"type": "setup", "input_format": "pcm_16000", "close_ws_on_eos": False})
        await socket.audio(speech_sample.audio.data)
        await socket.send({"type": "end_of_stream"})
        assert words(await socket.until("end_of_stream")) == list(speech_sample.words)
    assert socket.close_code is None
    await socket.ws.close()


async def test_client_may_leave_without_end_of_stream(server: LiveServer, speech_sample: SpeechSample) -> None:
    for _ in range(3):
        socket = await connect(server)
        await socket.send({"type": "setup", "input_format": "pcm_16000", "json_config": {"language": "en"}})
        await socket.audio(speech_sample.audio.data[:16000])
        await socket.ws.close()
    messages = await transcribe(server, {"input_format": "pcm_16000"}, speech_sample.audio.data)
    assert words(messages) == list(speech_sample.words)


# --- STT: input formats -----------------------------------------------------------------------------------------


def wav_bytes(audio: PCMAudio, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    samples = numpy.frombuffer(audio.data, dtype="<i2")
    soundfile.write(buffer, samples, audio.sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("input_format", ["ulaw_8000", "alaw_8000", "pcm_24000", "pcm"])
async def test_raw_formats_are_converted(server: LiveServer, speech_sample: SpeechSample, input_format: str) -> None:
    fmt = {"pcm": AudioFormat.pcm16(24000)}.get(input_format) or AudioFormat.parse(
        input_format.replace("ulaw", "mulaw")
    )
    data = encode(speech_sample.audio, fmt)
    messages = await transcribe(server, {"input_format": input_format}, data, ODD_CHUNKS)
    assert words(messages) == list(speech_sample.words)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT", "PCM_24"])
async def test_wav_split_anywhere(server: LiveServer, speech_sample: SpeechSample, subtype: str) -> None:
    data = wav_bytes(speech_sample.audio, subtype)
    messages = await transcribe(server, {"input_format": "wav"}, data, (7, 13, 1001))
    assert words(messages) == list(speech_sample.words)


async def test_opus_is_decoded_at_flush_and_end(server: LiveServer, speech_sample: SpeechSample) -> None:
    data = encode(speech_sample.audio, AudioFormat("ogg_opus", 16000))
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "opus"})
    await socket.audio(data, (999,))
    await socket.send({"type": "flush", "flush_id": 1})
    flushed = await socket.until("flushed")
    assert words(flushed) == list(speech_sample.words)
    await socket.send({"type": "end_of_stream"})
    assert kinds(await socket.rest())[-1] == "end_of_stream"


async def test_malformed_wav_is_an_error(server: LiveServer) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "wav"})
    await socket.audio(b"OggS" + bytes(100))
    messages = await socket.rest()
    assert kinds(messages) == ["ready", "error"] and "RIFF" in messages[1]["message"]
    assert socket.close_code == 1008


# --- STT: semantic VAD ------------------------------------------------------------------------------------------


class NoVadSTT(ScriptedSTT):
    """A scripted STT that reports no voice activity: the front measures it."""

    capabilities: ClassVar[STTCapabilities] = attrs.evolve(ScriptedSTT.capabilities, vad=False)


async def test_steps_without_backend_vad_follow_the_silence(speech_sample: SpeechSample) -> None:
    silence = bytes(2 * 16000 * 2)
    stt = NoVadSTT.for_audio(speech_sample.audio, speech_sample.words)
    async with LiveServer(make_app(stt, None)) as live:
        messages = await transcribe(live, {"input_format": "pcm_16000"}, speech_sample.audio.data + silence)
    steps = [m for m in messages if m["type"] == "step"]
    assert len(steps) == round((speech_sample.audio.duration_s + 2) / 0.08)
    two_s = [step["vad"][2]["inactivity_prob"] for step in steps]
    speech_end = round((speech_sample.audio.duration_s - 0.3) / 0.08)
    assert max(two_s[5 : speech_end - 1]) < 0.3  # while the tones play (0.12 s gaps between them)
    tail = two_s[speech_end + 1 :]
    assert tail == sorted(tail) and tail[-1] > 0.98  # 2.3 s of silence at the end
    assert words(messages) == list(speech_sample.words)


async def test_a_turn_completion_model_makes_the_steps_semantic(speech_sample: SpeechSample) -> None:
    scored: list[float] = []

    def completion(pcm16: bytes, sample_rate: int) -> float:
        scored.append(len(pcm16) / 2 / sample_rate)
        return 0.95

    stt = NoVadSTT.for_audio(speech_sample.audio, speech_sample.words)
    async with LiveServer(make_app(stt, None, turn_completion=completion)) as live:
        audio = speech_sample.audio.data + bytes(2 * 16000 * 2)
        messages = await transcribe(live, {"input_format": "pcm_16000"}, audio)
    two_s = [m["vad"][2]["inactivity_prob"] for m in messages if m["type"] == "step"]
    speech_end = round((speech_sample.audio.duration_s - 0.3) / 0.08)
    assert min(two_s[speech_end + 1 :]) >= 0.95  # at once, where the silence alone gives 0.15 after 80 ms
    assert scored and max(scored) <= speech_sample.audio.duration_s  # at the first step of each silence


async def test_steps_from_backend_vad_rise_in_silence(server: LiveServer, speech_sample: SpeechSample) -> None:
    messages = await transcribe(server, {"input_format": "pcm_16000"}, speech_sample.audio.data + bytes(64000))
    steps = [m for m in messages if m["type"] == "step"]
    probs = [step["vad"][-1]["inactivity_prob"] for step in steps]
    assert probs[-1] > 0.3 and max(probs[10:20]) < 0.05


# --- STT: multiplexing ------------------------------------------------------------------------------------------


async def test_concurrent_stt_requests_on_one_socket(server: LiveServer, speech_sample: SpeechSample) -> None:
    socket = await connect(server)
    ids = ["a", "b", "c"]
    for req in ids:
        await socket.send(
            {"type": "setup", "input_format": "pcm_16000", "client_req_id": req, "close_ws_on_eos": False}
        )
    data = speech_sample.audio.data
    for start in range(0, len(data), 2560):
        for req in ids:
            await socket.audio(data[start : start + 2560], client_req_id=req)
    for number, req in enumerate(ids):
        await socket.send({"type": "flush", "flush_id": number, "client_req_id": req})
        await socket.send({"type": "end_of_stream", "client_req_id": req})
    received: dict[str, list[dict[str, Any]]] = {req: [] for req in ids}
    while sum(kinds(messages)[-1:] == ["end_of_stream"] for messages in received.values()) < len(ids):
        message = await socket.recv()
        received[message["client_req_id"]].append(message)
    for number, req in enumerate(ids):
        assert kinds(received[req])[0] == "ready" and kinds(received[req]).count("ready") == 1
        assert words(received[req]) == list(speech_sample.words)
        assert {"type": "flushed", "flush_id": number, "client_req_id": req} in received[req]
    assert socket.close_code is None
    await socket.ws.close()


async def test_a_failed_multiplexed_request_leaves_the_others(server: LiveServer, speech_sample: SpeechSample) -> None:
    socket = await connect(server)
    await socket.send({"type": "setup", "input_format": "pcm_16000", "client_req_id": "good", "close_ws_on_eos": False})
    await socket.send({"type": "setup", "input_format": "pcm_16000", "client_req_id": "good", "close_ws_on_eos": False})
    await socket.send({"type": "setup", "input_format": "mp3", "client_req_id": "bad", "close_ws_on_eos": False})
    await socket.send({"type": "audio", "audio": "AAAA", "client_req_id": "nobody"})
    errors = {}
    while len(errors) < 3:
        message = await socket.recv()
        if message["type"] == "error":
            errors[message["client_req_id"]] = message
    assert {req: error["code"] for req, error in errors.items()} == {"good": 1008, "bad": 1008, "nobody": 1008}
    assert "already in use" in errors["good"]["message"] and "missing setup" in errors["nobody"]["message"]
    await socket.audio(speech_sample.audio.data, client_req_id="good")
    await socket.send({"type": "end_of_stream", "client_req_id": "good"})
    assert words(await socket.until("end_of_stream")) == list(speech_sample.words)
    assert socket.close_code is None
    await socket.ws.close()


async def test_stt_and_tts_share_a_socket_dispatched_on_setup(server: LiveServer, speech_sample: SpeechSample) -> None:
    socket = await connect(server, "/any/path/livekit/uses")
    await socket.send({"type": "setup", "input_format": "pcm_16000", "client_req_id": "ear", "close_ws_on_eos": False})
    await socket.send(
        {
            "type": "setup",
            "voice_id": "sine",
            "output_format": "pcm_16000",
            "client_req_id": "mouth",
            "close_ws_on_eos": False,
        }
    )
    await socket.send({"type": "text", "text": "hi there", "client_req_id": "mouth"})
    await socket.send({"type": "end_of_stream", "client_req_id": "mouth"})
    await socket.audio(speech_sample.audio.data, client_req_id="ear")
    await socket.send({"type": "end_of_stream", "client_req_id": "ear"})
    received: dict[str, list[dict[str, Any]]] = {"ear": [], "mouth": []}
    while not all(kinds(messages)[-1:] == ["end_of_stream"] for messages in received.values()):
        message = await socket.recv()
        received[message["client_req_id"]].append(message)
    assert words(received["ear"]) == list(speech_sample.words)
    assert words(received["mouth"]) == ["hi", "there"] and audio_of(received["mouth"])
    await socket.ws.close()


@pytest.mark.parametrize("path", ["/speech/tts", "/api/speech/asr", "/v1/whatever"])
async def test_setup_content_decides_over_the_path(server: LiveServer, path: str) -> None:
    socket = await connect(server, path)
    await socket.send({"type": "setup", "voice_id": "sine", "output_format": "pcm"})
    ready = await socket.recv()
    assert ready["sample_rate"] == 48000 and ready["audio_stream_names"] == ["audio"]
    await socket.ws.close()


# --- authentication ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"), [(None, "No authentication provided"), ("wrong", "API key is revoked or expired")]
)
@pytest.mark.parametrize("path", ["/api/speech/asr", "/api/speech/tts"])
async def test_websocket_auth_failure(server: LiveServer, key: str | None, message: str, path: str) -> None:
    socket = await connect(server, path, key=key)
    assert await socket.rest() == [{"type": "error", "message": message, "code": 1008}]
    assert socket.close_code == 1008


async def test_browser_token_is_single_use(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/api/api-keys/token", headers={"x-api-key": KEY})
        refused = await http.get("/api/api-keys/token", headers={"x-api-key": "wrong"})
    assert response.status_code == 200
    token, expires_at = response.json()["token"], response.json()["expires_at"]
    assert expires_at.endswith("Z") and token
    assert refused.status_code == 401 and refused.json() == {"detail": "API key is revoked or expired"}
    socket = await connect(server, "/api/speech/tts", key=None, query=f"?token={token}")
    await socket.send({"type": "setup", "output_format": "pcm"})
    assert (await socket.recv())["type"] == "ready"
    await socket.ws.close()
    again = await connect(server, "/api/speech/tts", key=None, query=f"?token={token}")
    assert await again.rest() == [
        {"type": "error", "message": "token is invalid, expired or already used", "code": 1008}
    ]


async def test_expired_token_is_refused(scripted_stt: ScriptedSTT) -> None:
    async with LiveServer(make_app(scripted_stt, None, token_ttl_s=0.05)) as live:
        async with httpx.AsyncClient(base_url=live.url) as http:
            token = (await http.get("/api-keys/token", headers={"x-api-key": "any"})).json()["token"]
        await asyncio.sleep(0.1)
        socket = await connect(live, key=None, query=f"?token={token}")
        assert (await socket.rest())[0]["code"] == 1008 and socket.close_code == 1008


async def test_any_key_is_accepted_without_a_key_list(scripted_stt: ScriptedSTT) -> None:
    async with LiveServer(make_app(scripted_stt, None)) as live:
        socket = await connect(live, key="whatever")
        await socket.send({"type": "setup", "input_format": "pcm"})
        assert (await socket.recv())["type"] == "ready"
        await socket.ws.close()
        empty = await connect(live, key="")
        assert (await empty.rest())[0]["message"] == "No authentication provided"


# --- REST -------------------------------------------------------------------------------------------------------


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"content-type": "audio/wav"}, {}),
        ({}, {"model": "default"}),
        ({"content-type": "audio/x-wav"}, {"model_name": "default", "json_config": '{"language": "en"}'}),
    ],
)
async def test_rest_stt_wav(
    server: LiveServer, speech_sample: SpeechSample, headers: dict[str, str], query: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/api/post/speech/asr",
            content=wav_bytes(speech_sample.audio),
            params=query,
            headers={"x-api-key": KEY, **headers},
        )
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(response.text)
    assert kinds(lines)[0] == "ready" and kinds(lines)[-1] == "end_of_stream"
    assert words(lines) == list(speech_sample.words)


async def test_rest_stt_raw_formats_by_query_or_content_type(server: LiveServer, speech_sample: SpeechSample) -> None:
    pcm24 = encode(speech_sample.audio, AudioFormat.pcm16(24000))
    ulaw = encode(speech_sample.audio, AudioFormat("mulaw", 8000))
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http:
        by_type = await http.post("/api/post/speech/asr", content=pcm24, headers={"content-type": "audio/pcm"})
        by_query = await http.post("/post/speech/asr", content=ulaw, params={"input_format": "ulaw_8000"})
    assert words(ndjson(by_type.text)) == list(speech_sample.words)
    assert words(ndjson(by_query.text)) == list(speech_sample.words)


@pytest.mark.parametrize(
    ("headers", "params", "body"),
    [
        ({"content-type": "audio/mpeg"}, {}, "error from server 1008: unsupported content type for SST 'audio/mpeg'"),
        ({"x-api-key": "wrong"}, {}, "error from server 1008: API key is revoked or expired"),
        (
            {},
            {"json_config": '{"delay_in_frames": 5}'},
            "error from server 1008: invalid json_config: delay_in_frames=5",
        ),
        ({}, {"input_format": "flac"}, "error from server 1008: unsupported input_format 'flac'"),
    ],
)
async def test_rest_stt_errors_are_http_500_text(
    server: LiveServer, headers: dict[str, str], params: dict[str, str], body: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/api/post/speech/asr", content=b"RIFF", params=params, headers={"x-api-key": KEY, **headers}
        )
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(body)


async def test_rest_stt_bad_audio_is_an_error_line(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http:
        response = await http.post(
            "/api/post/speech/asr", content=b"not a wav file at all", params={"input_format": "wav"}
        )
    lines = ndjson(response.text)
    assert response.status_code == 200 and kinds(lines) == ["ready", "error"] and lines[1]["code"] == 1008


@pytest.mark.parametrize(
    ("output_format", "media_type", "rate"),
    [
        ("wav", "audio/wav", 48000),
        ("pcm", "audio/pcm", 48000),
        ("pcm_16000", "audio/pcm", 16000),
        ("opus", "audio/ogg", 48000),
        ("ulaw_8000", "audio/basic", 8000),
    ],
)
async def test_rest_tts_only_audio(server: LiveServer, output_format: str, media_type: str, rate: int) -> None:
    text = "only audio please"
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http:
        response = await http.post(
            "/api/post/speech/tts",
            json={"text": text, "voice_id": "YTpq7expH9539ERJ", "output_format": output_format, "only_audio": True},
        )
    assert response.status_code == 200 and response.headers["content-type"] == media_type
    fmt = {"wav": None, "opus": None, "pcm": "pcm_48000", "ulaw_8000": "mulaw_8000"}.get(output_format, output_format)
    audio = decode(response.content, fmt)
    assert audio.sample_rate == rate
    assert audio.duration_s == pytest.approx(tone_timings(text)[-1][2], abs=0.03)


@pytest.mark.parametrize("json_config", [{"padding_bonus": 2.0}, '{"padding_bonus": 2.0}'])
async def test_rest_tts_ndjson_with_timings(server: LiveServer, json_config: Any) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http:
        response = await http.post(
            "/api/post/speech/tts",
            json={"text": "slow words", "output_format": "pcm_16000", "json_config": json_config},
        )
    lines = ndjson(response.text)
    assert kinds(lines)[0] == "ready" and kinds(lines)[-1] == "end_of_stream"
    expected = tone_timings("slow words", speed=0.75)  # padding_bonus 2 is slower: speed 1 - 2/8
    assert [(m["text"], m["start_s"], m["stop_s"]) for m in lines if m["type"] == "text"] == [
        (word, round(start, 3), round(end, 3)) for word, start, end in expected
    ]
    assert len(audio_of(lines)) == round(expected[-1][2] * 16000) * 2


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"text": "hi", "voice_id": "nope"}, "error from server 1011: unknown voice 'nope'"),
        ({"text": ""}, "error from server 1008: 'text' must be a non-empty string"),
        ({"text": "hi", "output_format": "aac"}, "error from server 1008: unsupported output_format 'aac'"),
        ({"text": "hi", "json_config": {"temp": 9}}, "error from server 1008: invalid json_config: temp=9"),
    ],
)
async def test_rest_tts_errors(server: LiveServer, body: dict[str, Any], error: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http:
        response = await http.post("/api/post/speech/tts", json=body)
    assert response.status_code == 500 and response.text.startswith(error)


async def test_credits_and_voices_endpoints(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http:
        credits = (await http.get("/api/usages/credits")).json()
        voices = (await http.get("/api/voices/", params={"limit": 0, "include_catalog": 1})).json()
        limited = (await http.get("/api/voices/", params={"skip": 1, "limit": 1})).json()
        one = await http.get("/api/voices/square")
        missing = await http.get("/api/voices/nope")
        unauthorised = await http.get("/api/usages/credits", headers={"x-api-key": "wrong"})
    assert credits["remaining_credits"] == 1_000_000 and "billing_period" in credits
    assert [voice["uid"] for voice in voices][:2] == ["sine", "square"]
    assert [voice["uid"] for voice in limited] == ["square"]
    assert one.json()["name"] == "Square-wave tones" and missing.status_code == 404
    assert unauthorised.status_code == 401


# --- TTS over WebSocket -----------------------------------------------------------------------------------------


async def speak(server: LiveServer, setup: dict[str, Any], texts: list[str]) -> list[dict[str, Any]]:
    socket = await connect(server, "/api/speech/tts")
    await socket.send({"type": "setup", **setup})
    for text in texts:
        await socket.send({"type": "text", "text": text})
    await socket.send({"type": "end_of_stream"})
    messages = await socket.rest()
    assert socket.close_code == 1000, messages[-1:]
    return messages


async def test_tts_ready_audio_frames_and_timings(server: LiveServer) -> None:
    messages = await speak(server, {"voice_id": "sine", "output_format": "pcm"}, ["Hello world,", "from tones."])
    ready = messages[0]
    assert ready["type"] == "ready" and uuid.UUID(ready["request_id"]) and ready["model_name"] == "default"
    assert (ready["sample_rate"], ready["frame_size"]) == (48000, 3840)
    assert ready["audio_stream_names"] == ["audio"] and ready["text_stream_names"] == ["text"]
    assert kinds(messages)[-1] == "end_of_stream"
    frames = [m for m in messages if m["type"] == "audio"]
    assert all(len(base64.b64decode(f["audio"])) == 7680 for f in frames[:-1])
    assert [f["start_s"] for f in frames] == pytest.approx([i * 0.08 for i in range(len(frames))])
    timings = [(m["text"], m["start_s"], m["stop_s"]) for m in messages if m["type"] == "text"]
    expected = tone_timings("Hello world, from tones.")
    assert timings == [(w, round(s, 3), round(e, 3)) for w, s, e in expected]
    assert len(audio_of(messages)) == round(expected[-1][2] * 48000) * 2


async def test_text_messages_are_joined_with_one_space(server: LiveServer) -> None:
    messages = await speak(server, {"output_format": "pcm_16000"}, ["hel", "lo", "wor ld"])
    assert words(messages) == ["hel", "lo", "wor", "ld"]


@pytest.mark.parametrize(
    ("output_format", "first_bytes", "frame_bytes"),
    [
        ("wav", b"RIFF", 7680),
        ("pcm_16000", None, 2560),
        ("ulaw_8000", None, 640),
        ("alaw_8000", None, 640),
        ("pcm_22050", None, 3528),
    ],
)
async def test_tts_output_formats(
    server: LiveServer, output_format: str, first_bytes: bytes | None, frame_bytes: int
) -> None:
    messages = await speak(server, {"output_format": output_format}, ["format check"])
    frames = [base64.b64decode(m["audio"]) for m in messages if m["type"] == "audio"]
    if first_bytes:
        assert frames[0].startswith(first_bytes) and len(frames[0]) == 44 + frame_bytes
    else:
        assert len(frames[0]) == frame_bytes
    assert all(len(frame) == frame_bytes for frame in frames[1:-1])


async def test_tts_opus_comes_whole_at_the_end(server: LiveServer) -> None:
    messages = await speak(server, {"output_format": "opus"}, ["an ogg stream"])
    audio = decode(audio_of(messages), "opus")
    assert audio.duration_s == pytest.approx(tone_timings("an ogg stream")[-1][2], abs=0.03)


async def test_flush_tag_speaks_at_once(server: LiveServer) -> None:
    socket = await connect(server, "/api/speech/tts")
    await socket.send({"type": "setup", "output_format": "pcm_16000"})
    await socket.send({"type": "text", "text": "now<flush>"})
    assert words(await socket.until("text")) == ["now"]
    await socket.send({"type": "text", "text": "later"})
    await socket.send({"type": "end_of_stream"})
    assert words(await socket.rest()) == ["later"]


async def test_break_tag_adds_silence(server: LiveServer) -> None:
    messages = await speak(
        server, {"output_format": "pcm_16000"}, ['one <break time="0.5s" /> two', '<break time="250ms"/>three']
    )
    timings = {m["text"]: (m["start_s"], m["stop_s"]) for m in messages if m["type"] == "text"}
    plain = dict((w, (s, e)) for w, s, e in tone_timings("one two three"))
    assert timings["one"] == pytest.approx(plain["one"])
    assert timings["two"][0] == pytest.approx(plain["two"][0] + 0.5, abs=1e-3)
    assert timings["three"][0] == pytest.approx(plain["three"][0] + 0.75, abs=1e-3)
    audio = audio_of(messages)
    assert len(audio) == pytest.approx(2 * 16000 * (plain["three"][1] + 0.75), abs=4)
    start = round(plain["one"][1] * 16000) * 2
    assert audio[start : start + 16000] == bytes(16000)  # the first half of the break is silent


async def test_bad_break_is_an_error(server: LiveServer) -> None:
    socket = await connect(server, "/api/speech/tts")
    await socket.send({"type": "setup", "output_format": "pcm"})
    await socket.send({"type": "text", "text": 'a <break time="9s"/> b'})
    messages = await socket.rest()
    assert kinds(messages) == ["ready", "error"] and "out of range" in messages[1]["message"]
    assert socket.close_code == 1008


@pytest.mark.parametrize(
    ("setup", "code", "text"),
    [
        ({"voice_id": "no-such-voice"}, 1011, "unknown voice 'no-such-voice'"),
        ({"voice": "nobody"}, 1011, "unknown voice 'nobody'"),
        ({"output_format": "mp3"}, 1008, "unsupported output_format 'mp3'"),
        ({"json_config": {"cfg_coef": 0.5}}, 1008, "cfg_coef"),
    ],
)
async def test_tts_setup_errors(server: LiveServer, setup: dict[str, Any], code: int, text: str) -> None:
    socket = await connect(server, "/api/speech/tts")
    await socket.send({"type": "setup", **setup})
    messages = await socket.rest()
    assert kinds(messages) == ["error"] and text in messages[0]["message"] and messages[0]["code"] == code
    assert socket.close_code == code


async def test_voice_by_name_or_id_picks_the_backend_voice(server: LiveServer) -> None:
    by_name = audio_of(await speak(server, {"voice": "square-WAVE tones", "output_format": "pcm_24000"}, ["buzz"]))
    by_id = audio_of(await speak(server, {"voice_id": "square", "output_format": "pcm_24000"}, ["buzz"]))
    default = audio_of(await speak(server, {"voice_id": "vjFyp2BcCyTlUmYb", "output_format": "pcm_24000"}, ["buzz"]))
    square = (await ScriptedTTS(voice="square").synthesize("buzz", format="pcm_24000")).audio
    sine = (await ScriptedTTS().synthesize("buzz", format="pcm_24000")).audio
    assert by_name == by_id == square and default == sine


async def test_a_voice_mapping_replaces_the_catalogue() -> None:
    app = make_app(None, ScriptedTTS(), voices={"GradiumVoice0001": "square", "GradiumVoice0002": None})
    async with LiveServer(app) as live:
        ok = audio_of(await speak(live, {"voice_id": "GradiumVoice0001", "output_format": "pcm_24000"}, ["buzz"]))
        assert ok == (await ScriptedTTS(voice="square").synthesize("buzz", format="pcm_24000")).audio
        socket = await connect(live, "/api/speech/tts")
        await socket.send({"type": "setup", "voice_id": "sine"})
        assert (await socket.rest())[0]["code"] == 1011


async def test_multiplexed_tts_stamps_every_reply(server: LiveServer) -> None:
    """pipecat's pattern: one socket, a setup per context, concurrent contexts, eos per context."""
    socket = await connect(server, "/api/speech/tts")
    texts = {str(uuid.uuid4()): "first context speaks", str(uuid.uuid4()): "second one"}
    for req in texts:
        await socket.send(
            {
                "type": "setup",
                "output_format": "pcm",
                "voice_id": "_6Aslh2DxfmnRLmP",
                "close_ws_on_eos": False,
                "client_req_id": req,
            }
        )
    for req, text in texts.items():
        for word in text.split():
            await socket.send({"type": "text", "text": word, "client_req_id": req})
    for req in texts:
        await socket.send({"type": "end_of_stream", "client_req_id": req})
    received: dict[str, list[dict[str, Any]]] = {req: [] for req in texts}
    while not all(kinds(messages)[-1:] == ["end_of_stream"] for messages in received.values()):
        message = await socket.recv()
        assert message.get("client_req_id") in texts, message
        received[message["client_req_id"]].append(message)
    for req, text in texts.items():
        assert words(received[req]) == text.split()
        assert len(audio_of(received[req])) == round(tone_timings(text)[-1][2] * 48000) * 2
    # a finished client_req_id may be set up again on the same socket
    req = next(iter(texts))
    await socket.send({"type": "setup", "output_format": "pcm", "close_ws_on_eos": False, "client_req_id": req})
    await socket.send({"type": "text", "text": "again", "client_req_id": req})
    await socket.send({"type": "end_of_stream", "client_req_id": req})
    assert words(await socket.until("end_of_stream", client_req_id=req)) == ["again"]
    await socket.ws.close()


async def test_wrong_message_kinds_for_the_request(server: LiveServer) -> None:
    tts = await connect(server, "/api/speech/tts")
    await tts.send({"type": "setup", "output_format": "pcm"})
    await tts.send({"type": "flush", "flush_id": 1})
    assert kinds(await tts.rest()) == ["ready", "error"] and tts.close_code == 1008
    stt = await connect(server)
    await stt.send({"type": "setup", "input_format": "pcm"})
    await stt.send({"type": "text", "text": "hi"})
    messages = await stt.rest()
    assert "'text' messages belong to TTS" in messages[-1]["message"] and stt.close_code == 1008


async def test_a_server_without_a_backend_says_so(scripted_stt: ScriptedSTT) -> None:
    async with LiveServer(make_app(scripted_stt, None)) as live:
        socket = await connect(live, "/api/speech/tts")
        await socket.send({"type": "setup", "voice_id": "x"})
        assert "no text-to-speech backend" in (await socket.rest())[0]["message"]


# --- faults -----------------------------------------------------------------------------------------------------


def faulty(faults: Faults, scripted_stt: ScriptedSTT) -> LiveServer:
    return LiveServer(make_app(scripted_stt, ScriptedTTS(), faults=faults))


async def test_drop_after_n_messages_cuts_without_a_close_frame(scripted_stt: ScriptedSTT) -> None:
    async with faulty(Faults(drop_after=3), scripted_stt) as live:
        socket = await connect(live, "/api/speech/tts")
        await socket.send({"type": "setup", "output_format": "pcm"})
        await socket.send({"type": "text", "text": "a longer text that makes many messages"})
        await socket.send({"type": "end_of_stream"})
        messages = await socket.rest()
        assert len(messages) == 3 and kinds(messages)[0] == "ready"
        assert socket.close_code == 1006  # no close frame
        assert socket.ws.close_reason == ""


async def test_error_after_n_messages(scripted_stt: ScriptedSTT) -> None:
    async with faulty(Faults(error_after=2, error_code=1011), scripted_stt) as live:
        socket = await connect(live, "/api/speech/tts")
        await socket.send({"type": "setup", "output_format": "pcm", "client_req_id": "r"})
        await socket.send({"type": "text", "text": "several words to speak", "client_req_id": "r"})
        messages = await socket.rest()
        assert kinds(messages) == ["ready", "text", "error"]
        assert messages[-1] == {
            "type": "error",
            "message": "injected fault: internal server error",
            "code": 1011,
            "client_req_id": "r",
        }
        assert socket.close_code == 1011


async def test_rejected_setup_and_faults_on_the_first_connections_only(scripted_stt: ScriptedSTT) -> None:
    async with faulty(Faults(reject_setup=1013, connections=1), scripted_stt) as live:
        socket = await connect(live)
        await socket.send({"type": "setup", "input_format": "pcm"})
        assert kinds(await socket.rest()) == ["error"] and socket.close_code == 1013
        healthy = await connect(live)
        await healthy.send({"type": "setup", "input_format": "pcm"})
        assert (await healthy.recv())["type"] == "ready"
        await healthy.ws.close()


async def test_slow_replies(scripted_stt: ScriptedSTT) -> None:
    async with faulty(Faults(delay_s=0.05), scripted_stt) as live:
        socket = await connect(live)
        started = time.monotonic()
        await socket.send({"type": "setup", "input_format": "pcm_16000"})
        await socket.send({"type": "end_of_stream"})
        assert kinds(await socket.rest()) == ["ready", "end_of_stream"]
        assert time.monotonic() - started >= 0.1


async def test_rest_faults(scripted_stt: ScriptedSTT, speech_sample: SpeechSample) -> None:
    body = {"text": "many words make many lines", "output_format": "pcm"}
    async with faulty(Faults(drop_after=2), scripted_stt) as live:
        async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": KEY}) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post("/api/post/speech/tts", json=body)
    async with faulty(Faults(error_after=1, error_code=1011), scripted_stt) as live:
        async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": KEY}) as http:
            lines = ndjson((await http.post("/api/post/speech/tts", json=body)).text)
            only_audio = await http.post("/api/post/speech/tts", json=body | {"only_audio": True})
    assert kinds(lines) == ["ready", "error"] and lines[1]["code"] == 1011
    assert only_audio.status_code == 500 and only_audio.text.startswith("error from server 1011: injected fault")
    async with faulty(Faults(reject_setup=1008), scripted_stt) as live:
        async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": KEY}) as http:
            rejected = await http.post("/api/post/speech/asr", content=b"RIFF")
    assert rejected.status_code == 500 and rejected.text.startswith("error from server 1008: injected fault")


# --- the local backends: real speech, offline -------------------------------------------------------------------


async def test_local_backends_round_trip() -> None:
    local = pytest.importorskip("speechbridge_local")
    from speechbridge.testing import word_overlap

    sentence = "the weather is nice today"
    async with LiveServer(make_app(local.LocalSTT(), local.LocalTTS())) as live:
        async with httpx.AsyncClient(base_url=live.url, headers={"x-api-key": KEY}, timeout=60) as http:
            response = await http.post(
                "/api/post/speech/tts", json={"text": sentence, "output_format": "pcm_16000", "only_audio": True}
            )
        assert response.status_code == 200
        speech = response.content + bytes(16000)
        messages = await transcribe(live, {"input_format": "pcm_16000", "json_config": {"language": "en"}}, speech)
    heard = " ".join(words(messages))
    assert word_overlap(sentence.split(), heard) >= 0.6, heard
    steps = [m["vad"][2]["inactivity_prob"] for m in messages if m["type"] == "step"]
    assert steps[-1] > 0.5 > min(steps)  # speech, then half a second of silence
