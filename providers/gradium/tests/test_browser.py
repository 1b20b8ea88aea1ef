"""The browser token route, mounted in a Starlette app, minting tokens from the Gradium front; both on 127.0.0.1."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import AsyncIterator
from typing import Any, Final

import attrs
import httpx
import pytest
from speechbridge_gradium import browser as browser_module
from speechbridge_gradium.browser import TokenEndpoint
from speechbridge_gradium.server import make_app
from speechbridge_gradium.settings import GradiumTTSSettings
from speechbridge_gradium.stt import GradiumSTT
from speechbridge_gradium.tts import GradiumTTS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from speechbridge.errors import AuthenticationError, ConfigError
from speechbridge.events import AudioChunk, StreamEnded
from speechbridge.testing import ScriptedSTT, ScriptedTTS
from speechbridge.testing.servers import LiveServer

KEY: Final = "gd_browser_key_do_not_print"
SESSION: Final = "alice-session"


@attrs.define
class Site:
    """A web app with the token route, and the Gradium front it mints tokens from."""

    url: str
    gradium_url: str
    checked: list[str] = attrs.Factory(list)  # the paths the app's authenticate() saw


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with LiveServer(make_app(ScriptedSTT(script="hello"), ScriptedTTS(), api_keys=[KEY])) as gradium:
        found = Site("", gradium.url)

        async def signed_in(scope: Any) -> bool:
            found.checked.append(scope["path"])
            return Request(scope).cookies.get("session") == SESSION

        endpoint = TokenEndpoint(KEY, signed_in, base_url=gradium.url + "/api")
        app = Starlette(routes=[Route("/gradium-token", endpoint, methods=["GET", "POST", "PUT"])])
        async with LiveServer(app) as web:
            found.url = web.url
            yield found


def browser(site: Site, *, signed_in: bool = True) -> httpx.AsyncClient:
    cookies = {"session": SESSION} if signed_in else {}
    return httpx.AsyncClient(base_url=site.url, cookies=cookies, timeout=10)


async def test_each_call_gets_a_fresh_token_and_its_socket_url(site: Site):
    async with browser(site) as client:
        first = await client.get("/gradium-token")
        second = await client.post("/gradium-token")
        asr = await client.get("/gradium-token", params={"speech": "asr"})
    for answer in (first, second, asr):
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        assert set(answer.json()) == {"token", "expires_at", "url"}
    tokens = {answer.json()["token"] for answer in (first, second, asr)}
    assert len(tokens) == 3
    ws = site.gradium_url.replace("http://", "ws://")
    assert first.json()["url"] == f"{ws}/api/speech/tts?token={first.json()['token']}"
    assert asr.json()["url"] == f"{ws}/api/speech/asr?token={asr.json()['token']}"
    assert site.checked == ["/gradium-token"] * 3


async def test_unauthenticated_gets_401_and_no_token(site: Site):
    async with browser(site, signed_in=False) as client:
        answer = await client.get("/gradium-token")
    assert answer.status_code == 401
    assert answer.json() == {"error": "sign in first"}


async def test_bad_requests(site: Site):
    async with browser(site) as client:
        bogus = await client.get("/gradium-token", params={"speech": "s2s"})
        put = await client.put("/gradium-token")
    assert bogus.status_code == 400 and "tts" in bogus.json()["error"]
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST"


async def test_a_token_opens_one_socket_only(site: Site):
    async with browser(site) as client:
        token = (await client.get("/gradium-token")).json()["token"]
    async with GradiumTTS(token=token, base_url=site.gradium_url + "/api") as tts:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text("Hello there.")
            await stream.end()
            events = await stream.collect()
    assert isinstance(events[-1], StreamEnded) and any(isinstance(event, AudioChunk) for event in events)
    async with GradiumTTS(token=token, base_url=site.gradium_url + "/api") as again:
        with pytest.raises(AuthenticationError) as info:
            async with again.stream(format="pcm_16000"):
                pass
    assert info.value.code == 1008 and token not in str(info.value)


async def test_a_fresh_token_per_connection_from_the_route(site: Site):
    async with browser(site) as client:

        async def mint() -> str:
            answer = await client.get("/gradium-token", params={"speech": "asr"})
            return str(answer.json()["token"])

        async with GradiumSTT(token=mint, base_url=site.gradium_url + "/api") as stt:
            for _ in range(2):  # two sockets, two single-use tokens
                async with stt.stream(format="pcm_16000") as stream:
                    await stream.send_audio(bytes(3200))
                    await stream.end()
                    assert isinstance((await stream.collect())[-1], StreamEnded)
    assert len(site.checked) == 2


async def test_gradium_refusing_is_a_502_that_leaks_nothing(caplog: pytest.LogCaptureFixture):
    wrong = "gd_wrong_browser_key_secret"
    async with LiveServer(make_app(None, ScriptedTTS(), api_keys=[KEY])) as gradium:

        async def anyone(scope: Any) -> bool:
            return True

        endpoint = TokenEndpoint(wrong, anyone, settings=GradiumTTSSettings(base_url=gradium.url + "/api"))
        async with LiveServer(Starlette(routes=[Route("/t", endpoint)])) as web, httpx.AsyncClient() as client:
            with caplog.at_level(logging.WARNING, logger="speechbridge_gradium.browser"):
                answer = await client.get(web.url + "/t")
    assert answer.status_code == 502
    assert answer.json() == {"error": "could not create a speech token; try again"}
    assert "could not create a Gradium browser token" in caplog.text and wrong not in caplog.text
    assert wrong not in repr(endpoint)


def test_the_endpoint_checks_its_configuration():
    async def anyone(scope: Any) -> bool:
        return True

    with pytest.raises(ConfigError, match="API key is empty"):
        TokenEndpoint("", anyone)
    with pytest.raises(ConfigError, match="speech='s2s'"):
        TokenEndpoint(KEY, anyone, speech="s2s")
    with pytest.raises(ConfigError, match="not both"):
        TokenEndpoint(KEY, anyone, settings=GradiumTTSSettings(), base_url="http://127.0.0.1:1/api")


async def test_the_documented_example_runs(monkeypatch: pytest.MonkeyPatch):
    lines = browser_module.__doc__.split("A runnable app")[1].split("and in the page")[0].splitlines()
    source = textwrap.dedent("\n".join(line for line in lines[1:] if not line.endswith("::")))
    monkeypatch.setenv("GRADIUM_API_KEY", KEY)
    namespace: dict[str, Any] = {}
    exec(compile(source, "browser example", "exec"), namespace)
    async with LiveServer(namespace["app"]) as web:
        async with httpx.AsyncClient(base_url=web.url, cookies={"session": "forged"}) as client:
            stranger = await client.get("/gradium-token")
    assert stranger.status_code == 401  # a signed-in user would get a token from api.gradium.ai: not in tests
