"""Browser tokens, voices and credits against the Gradium front (``server.make_app``) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import attrs
import pytest
from speechbridge_gradium.account import BrowserToken, Credits, create_token, credits, list_voices
from speechbridge_gradium.server import make_app
from speechbridge_gradium.settings import DEFAULT_VOICE_ID, GradiumSTTSettings, GradiumTTSSettings
from speechbridge_gradium.tts import GradiumTTS

from speechbridge import cli
from speechbridge.errors import AuthenticationError, ConfigError, ProtocolError, TransportError
from speechbridge.provider import Secret
from speechbridge.testing import ScriptedTTS
from speechbridge.testing.servers import LiveServer
from speechbridge.tts import Voice

KEY: Final = "gd_account_key_do_not_print"
TTL_S: Final = 120.0


class RequestLog:
    """ASGI middleware recording each HTTP request's method, path, query and API key."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, dict[str, list[str]], str | None]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            key = headers.get(b"x-api-key")
            query = parse_qs(scope["query_string"].decode())
            self.requests.append((scope["method"], scope["path"], query, key.decode() if key else None))
        await self.app(scope, receive, send)


@attrs.frozen
class Front:
    api_url: str
    log: RequestLog


async def serve(**options: Any) -> AsyncIterator[Front]:
    log = RequestLog(make_app(None, ScriptedTTS(), api_keys=[KEY], token_ttl_s=TTL_S, **options))
    async with LiveServer(log) as live:
        yield Front(live.url + "/api", log)


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async for served in serve():
        yield served


# --- tokens -----------------------------------------------------------------------------------------------------


async def test_create_token_mints_a_fresh_token_each_time(front: Front):
    before = datetime.datetime.now(datetime.UTC)
    first = await create_token(KEY, base_url=front.api_url)
    second = await create_token(Secret(KEY), settings=GradiumSTTSettings(base_url=front.api_url))
    assert isinstance(first, BrowserToken) and first.token and first.token != second.token
    assert first.expires_at.tzinfo is not None
    assert before < first.expires_at <= before + datetime.timedelta(seconds=TTL_S + 2)
    assert front.log.requests[0] == ("GET", "/api/api-keys/token", {}, KEY)


async def test_token_never_shows_in_its_repr_and_builds_the_socket_url(front: Front):
    token = await create_token(KEY, base_url=front.api_url)
    assert token.token not in repr(token) and token.token not in str(token)
    assert (
        token.url("wss://api.gradium.ai/api/speech/tts") == f"wss://api.gradium.ai/api/speech/tts?token={token.token}"
    )
    assert token.url("ws://h/api/speech/asr?x=1") == f"ws://h/api/speech/asr?x=1&token={token.token}"


async def test_bad_key_is_an_authentication_error_without_the_key(front: Front):
    wrong = "gd_wrong_account_key_secret"
    for call in (create_token, list_voices, credits):
        with pytest.raises(AuthenticationError) as info:
            await call(wrong, base_url=front.api_url)
        assert info.value.code == 401
        assert wrong not in str(info.value) and wrong not in repr(info.value)


async def test_where_to_connect_is_validated_before_any_request(front: Front):
    with pytest.raises(ConfigError, match="not both"):
        await create_token(KEY, settings=GradiumTTSSettings(), base_url=front.api_url)
    with pytest.raises(ConfigError, match="base_url"):
        await create_token(KEY, base_url="ftp://example.com")
    with pytest.raises(ConfigError, match="API key is empty"):
        await create_token(" ", base_url=front.api_url)
    assert front.log.requests == []


async def test_unreachable_host_is_a_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError) as info:
        await create_token(KEY, base_url=f"http://127.0.0.1:{port}/api")
    assert info.value.retryable and KEY not in str(info.value)


# --- voices -----------------------------------------------------------------------------------------------------


async def test_list_voices_reads_the_catalogue(front: Front):
    voices = await list_voices(KEY, base_url=front.api_url)
    assert all(isinstance(voice, Voice) for voice in voices)
    by_id = {voice.id: voice for voice in voices}
    assert by_id["sine"] == Voice("sine", "Sine tones", description="sine tones")
    assert by_id[DEFAULT_VOICE_ID].name == "Emma"
    assert front.log.requests == [("GET", "/api/voices/", {"limit": ["0"], "include_catalog": ["1"]}, KEY)]
    await list_voices(KEY, base_url=front.api_url, include_catalog=False)
    assert front.log.requests[-1][2]["include_catalog"] == ["0"]


async def test_provider_voices_are_the_listed_voices(front: Front):
    async with GradiumTTS(api_key=KEY, base_url=front.api_url) as tts:
        voices = await tts.voices()
        synthesis = await tts.synthesize("Hello.", voice=voices[1].id, format="pcm_16000")
    assert voices == await list_voices(KEY, base_url=front.api_url)
    assert synthesis.audio


async def test_voices_of_a_mapped_catalogue():
    async for front in serve(voices={"AbCdEfGhIjKlMnOp": "square"}):
        assert await list_voices(KEY, base_url=front.api_url) == [Voice("AbCdEfGhIjKlMnOp", "AbCdEfGhIjKlMnOp")]


async def test_the_voices_command_lists_gradium_voices(
    front: Front, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRADIUM_API_KEY", KEY)
    for name in ("SPEECHBRIDGE_CONFIG", "SPEECHBRIDGE_TTS", "SPEECHBRIDGE_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    argv = ["voices", "--provider", "gradium", "-O", f"base_url={front.api_url}", "--json"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [voice["id"] for voice in listed] == [voice.id for voice in await list_voices(KEY, base_url=front.api_url)]
    assert front.log.requests[0][3] == KEY


# --- credits ----------------------------------------------------------------------------------------------------


async def test_credits(front: Front):
    balance = await credits(KEY, settings=GradiumTTSSettings(base_url=front.api_url))
    assert balance == Credits(1_000_000, 1_000_000, "monthly", None, "speechbridge")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"remaining": 5, "allocated": 10}, Credits(5, 10)),
        ({"remaining_credits": 7, "billing_period": "monthly"}, Credits(7, None, "monthly")),
        (
            {"remaining_credits": 3, "allocated_credits": 9, "next_rollover_date": "2026-12-01"},
            Credits(3, 9, None, "2026-12-01"),
        ),
    ],
)
async def test_credits_accept_both_spellings(answer: dict[str, Any], expected: Credits):
    async for front in serve(credits=answer):
        assert await credits(KEY, base_url=front.api_url) == expected


async def test_credits_without_a_balance_is_a_protocol_error():
    async for front in serve(credits={"plan_name": "free"}):
        with pytest.raises(ProtocolError, match="remaining"):
            await credits(KEY, base_url=front.api_url)
