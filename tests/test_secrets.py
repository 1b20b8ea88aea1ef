"""Keys and tokens never leak: every backend, with a canary key, through its success and failure paths.

Everything the library could show a person is captured: every log record of every logger at every level (the
fronts' uvicorn, websockets, picows and httpx logs included), standard output and error, each exception with its
traceback and the str, repr and attributes of every exception chained to it as a traceback shows the chain, the repr
and str of providers, settings, streams, connections, events and results, the CLI's output and every file
``compare`` writes. None of it may hold the canary key, a wrong key, a forged token or a token minted during the test,
raw, URL-encoded or JSON-escaped.

Servers are the vendors' fronts on 127.0.0.1 (over the scripted providers, or over providers that fail on purpose)
and a hostile server that refuses, garbles, drops or ignores every request while echoing back the credentials it was
sent, as a careless vendor might: the client must scrub them from what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import logging
import socket
import traceback
from collections.abc import Awaitable, Callable, Collection, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, quote_plus

import attrs
import pytest
from speechbridge_cartesia import account as cartesia_account
from speechbridge_cartesia.server import make_app as cartesia_front
from speechbridge_cartesia.stt import CartesiaSTT
from speechbridge_cartesia.tts import CartesiaTTS
from speechbridge_deepgram import account as deepgram_account
from speechbridge_deepgram.server import make_app as deepgram_front
from speechbridge_deepgram.stt import DeepgramSTT
from speechbridge_deepgram.tts import DeepgramTTS
from speechbridge_elevenlabs import account as elevenlabs_account
from speechbridge_elevenlabs.server import make_app as elevenlabs_front
from speechbridge_elevenlabs.stt import ElevenLabsSTT
from speechbridge_elevenlabs.tts import ElevenLabsTTS
from speechbridge_gradium import account as gradium_account
from speechbridge_gradium.server import Faults
from speechbridge_gradium.server import make_app as gradium_front
from speechbridge_gradium.stt import GradiumSTT
from speechbridge_gradium.tts import GradiumTTS

from speechbridge import cli, serving, transports
from speechbridge.audio import AudioFormat, PCMAudio, encode
from speechbridge.errors import (
    AuthenticationError,
    ConfigError,
    ProviderError,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
)
from speechbridge.reliability import Reliability
from speechbridge.stt import STTProvider, STTStream
from speechbridge.testing import ScriptedSTT, ScriptedTTS, ThreadedServer, make_speech_sample
from speechbridge.tts import TTSProvider, TTSStream

CANARY_KEY: Final = "sk-canary+7f3a/9c1e=5b2d0a64"
WRONG_KEY: Final = "sk-canary+WRONG/e4d1=88c07b"
FORGED_TOKEN: Final = "tok-canary+forged/0d9e=31"
CANARIES: Final = (CANARY_KEY, WRONG_KEY, FORGED_TOKEN)
OP_TIMEOUT_S: Final = 2.0
NO_RETRIES: Final = Reliability(retries=0, reconnects=0, dead_peer_timeout_s=1.0)
FAST: Final = Reliability(retries=1, reconnects=1, backoff_s=0.01, max_backoff_s=0.02, dead_peer_timeout_s=1.0)
ROUTINE_HEADERS: Final = frozenset(
    {"host", "connection", "upgrade", "content-length", "content-type", "accept", "accept-encoding", "user-agent",
     "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "x-api-source", "cartesia-version"}
)  # fmt: skip


def secret_forms(secret: str) -> set[str]:
    """How a secret can show up in text: as is, URL-encoded (both ways) and JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


# --- capture ----------------------------------------------------------------------------------------------------


class Capture(logging.Handler):
    """Everything that could show a secret: log records of every logger at every level, exceptions, reprs, text.

    :meth:`arm` lowers every logger to the lowest level and listens on the root and on every logger that does not
    propagate (uvicorn's). Arm it after the servers started: uvicorn configures its loggers when a server starts.
    """

    def __init__(self) -> None:
        super().__init__(level=1)
        self.seen: list[tuple[str, str]] = []
        self.secrets: set[str] = set(CANARIES)
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg!r} % {record.args!r}"
        parts = [message, repr(record.msg), repr(record.args), record.exc_text or "", record.stack_info or ""]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        self.seen.append((f"log record of {record.name}", "\n".join(parts)))

    def arm(self, *, server_logs: bool = True) -> None:
        """Listen; ``server_logs=False`` leaves the fronts' uvicorn loggers alone, for servers told to say a secret."""
        loggers = [logging.getLogger(), *(each for each in logging.Logger.manager.loggerDict.values())]
        for logger in loggers:
            if not isinstance(logger, logging.Logger) or (not server_logs and logger.name.startswith("uvicorn")):
                continue
            self._saved.append((logger, logger.level, logger.disabled))
            logger.setLevel(1)
            logger.disabled = False
            if (logger.parent is None or not logger.propagate) and self not in logger.handlers:
                logger.addHandler(self)

    def disarm(self) -> None:
        for logger, level, disabled in reversed(self._saved):
            logger.setLevel(level)
            logger.disabled = disabled
            logger.removeHandler(self)
        self._saved.clear()

    def text(self, where: str, text: str) -> None:
        self.seen.append((where, text))

    def exception(self, error: BaseException, where: str) -> None:
        """``error`` as a traceback shows it, and the str, repr, arguments and attributes of every exception in the
        chain a traceback (or an error tracker) shows: causes, and contexts not suppressed by ``raise ... from``."""
        self.text(f"traceback of {where}", "".join(traceback.format_exception(error)))
        pending, done = [error], set()
        while pending:
            each = pending.pop()
            if id(each) in done:
                continue
            done.add(id(each))
            details = [str(each), repr(each), repr(each.args), repr(getattr(each, "__dict__", {}))]
            self.text(f"{type(each).__name__} in {where}", "\n".join(details))
            context = None if each.__suppress_context__ else each.__context__
            pending += [chained for chained in (each.__cause__, context) if chained is not None]
            pending += list(getattr(each, "exceptions", ()))

    def objects(self, where: str, *objects: object) -> None:
        """The repr and str of our objects among ``objects`` and of our objects they hold (connections, pools)."""
        pending, done = [(item, 0) for item in objects], set()
        while pending:
            item, depth = pending.pop()
            if id(item) in done or depth > 4:
                continue
            done.add(id(item))
            if isinstance(item, dict):
                pending += [(value, depth) for value in item.values()]
            elif isinstance(item, (list, tuple, set, frozenset)):
                pending += [(value, depth) for value in item]
            elif type(item).__module__.startswith("speechbridge") and not isinstance(item, BaseException):
                self.text(f"repr of {type(item).__name__} in {where}", f"{item!r}\n{item!s}")
                pending += [(value, depth + 1) for value in getattr(item, "__dict__", {}).values()]

    def leaks(self) -> list[str]:
        found = []
        forms = {form for secret in self.secrets for form in secret_forms(secret)}
        for where, text in self.seen:
            for form in forms:
                at = text.find(form)
                if at >= 0:
                    found.append(f"{where}: ...{text[max(0, at - 100) : at + len(form) + 40]}...")
        return found


@pytest.fixture
def capture(capfd: pytest.CaptureFixture[str]) -> Iterator[Capture]:
    """A capture to :meth:`Capture.arm` once the servers run; leaving the test checks it and the standard streams."""
    captured = Capture()
    try:
        yield captured
        out, err = capfd.readouterr()
        captured.text("standard output", out)
        captured.text("standard error", err)
    finally:
        captured.disarm()
    check(captured)


def check(capture: Capture) -> None:
    """Fail when anything captured since the last check holds a secret, showing where and around what."""
    leaks = capture.leaks()
    capture.seen.clear()
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks[:40])


# --- servers ----------------------------------------------------------------------------------------------------


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _credentials_sent(scope: Scope) -> str:
    """What a request carried that could be a credential: its unusual headers and its query string."""
    values = [
        value.decode("latin-1") for name, value in scope["headers"] if name.decode("latin-1") not in ROUTINE_HEADERS
    ]
    return " ".join([*values, scope.get("query_string", b"").decode("latin-1")])


class Hostile:
    """A server that fails every request in one way (``mode``) and echoes the credentials it was sent.

    - ``401``, ``429``, ``500``: that HTTP status, for WebSocket handshakes too, with a JSON body echoing them;
    - ``garbage``: 200 with a body (or a WebSocket frame) that is no protocol's message (``garbage-echo``: echoing
      them, unlike every other mode, only in that body);
    - ``close``: WebSockets are accepted, then closed with code 1008 and the credentials as reason (HTTP: 500);
    - ``drop``: WebSockets are accepted and dropped without a close frame after the first message (HTTP: a bare 500);
    - ``silent``: requests and WebSockets are taken and never answered.
    """

    MODES: Final = ("401", "429", "500", "garbage", "close", "drop", "silent")

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        echo = "" if self.mode == "garbage" else _credentials_sent(scope)
        if scope["type"] == "http":
            await self._http(receive, send, echo)
        else:
            await self._websocket(receive, send, echo)

    async def _http(self, receive: Receive, send: Send, echo: str) -> None:
        while (await receive()).get("more_body"):
            pass
        if self.mode == "silent":
            await receive()  # http.disconnect: the client gave up
            return
        if self.mode == "drop":
            return  # uvicorn answers 500 with no body of ours
        status = int(self.mode) if self.mode.isdigit() else 200 if self.mode.startswith("garbage") else 500
        await self._answer(send, "http.response", status, echo)

    async def _websocket(self, receive: Receive, send: Send, echo: str) -> None:
        await receive()  # websocket.connect
        if self.mode.isdigit():
            await self._answer(send, "websocket.http.response", int(self.mode), echo)
            return
        await send({"type": "websocket.accept"})
        if self.mode.startswith("garbage"):
            await send({"type": "websocket.send", "text": f"<html>not a message: {echo}</html>"})
        elif self.mode == "close":
            await send({"type": "websocket.close", "code": 1008, "reason": f"bad credentials {echo}"[:120]})
            return
        elif self.mode == "drop":
            await receive()
            return  # uvicorn drops the connection without a close frame
        while (await receive())["type"] != "websocket.disconnect":
            pass

    @staticmethod
    async def _answer(send: Send, kind: str, status: int, echo: str) -> None:
        if status == 200:
            body = f"<html>not JSON: {echo}</html>".encode()
        else:
            message = f"refused credentials {echo}"
            detail = {"status": "invalid_api_key", "message": message}
            body = json.dumps({"detail": detail, "message": message, "error": message, "err_msg": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
        await send({"type": f"{kind}.start", "status": status, "headers": headers})
        await send({"type": f"{kind}.body", "body": body})


class Refusing:
    """Makes a scripted provider fail its requests with ``error`` once they start (mid-stream for streams)."""

    def __init__(self, error: SpeechBridgeError) -> None:
        self.error = error

    async def fail(self, *args: object, **kwargs: object) -> Any:
        raise self.error

    def stt(self) -> ScriptedSTT:
        refusing = self

        class RefusingSTT(ScriptedSTT):
            async def _transcribe(self, *args: Any) -> Any:
                raise refusing.error

            def _stream(self, format: AudioFormat, settings: Any) -> STTStream:
                stream = super()._stream(format, settings)
                stream._send_frame = refusing.fail  # type: ignore[method-assign]
                return stream

        return RefusingSTT(script="hello world")

    def tts(self) -> ScriptedTTS:
        refusing = self

        class RefusingTTS(ScriptedTTS):
            async def _synthesize(self, *args: Any) -> Any:
                raise refusing.error

            def _stream(self, format: AudioFormat, settings: Any) -> TTSStream:
                stream = super()._stream(format, settings)
                stream._send_text = refusing.fail  # type: ignore[method-assign]
                return stream

        return RefusingTTS()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- vendors ----------------------------------------------------------------------------------------------------


@attrs.frozen
class Vendor:
    """One backend: its front, its providers, how its base URL looks and how its tokens are minted and used."""

    name: str
    env: str
    front: Callable[..., Any]
    stt_class: type[STTProvider[Any]]
    tts_class: type[TTSProvider[Any]]
    api_path: str
    token_option: str
    mint: Callable[[str, str], Awaitable[dict[str, str]]]  # (key, base_url) -> {"stt": token, "tts": token, ...}

    def base_url(self, server_url: str) -> str:
        return server_url + self.api_path

    def stt(self, base_url: str, **options: Any) -> STTProvider[Any]:
        return self.stt_class(base_url=base_url, **{"reliability": FAST, "timeout_s": 1.0, **options})

    def tts(self, base_url: str, **options: Any) -> TTSProvider[Any]:
        return self.tts_class(base_url=base_url, **{"reliability": FAST, "timeout_s": 1.0, **options})


async def _gradium_tokens(key: str, base_url: str) -> dict[str, str]:
    tokens = [await gradium_account.create_token(key, base_url=base_url) for _ in range(2)]
    return {"stt": tokens[0].token, "tts": tokens[1].token}


async def _deepgram_tokens(key: str, base_url: str) -> dict[str, str]:
    grant = await deepgram_account.create_token(key, ttl_seconds=60, base_url=base_url)
    return {"stt": grant.token, "tts": grant.token, "batch": grant.token}


async def _cartesia_tokens(key: str, base_url: str) -> dict[str, str]:
    token = await cartesia_account.create_token(key, base_url=base_url)
    return {"stt": token.token, "tts": token.token, "batch": token.token}


async def _elevenlabs_tokens(key: str, base_url: str) -> dict[str, str]:
    kinds = {"stt": "realtime_scribe", "batch": "batch_scribe", "tts": "tts_websocket"}
    return {
        use: (await elevenlabs_account.create_token(key, kind, base_url=base_url)).token for use, kind in kinds.items()
    }


VENDORS: Final = {
    vendor.name: vendor
    for vendor in (
        Vendor("gradium", "GRADIUM_API_KEY", gradium_front, GradiumSTT, GradiumTTS, "/api", "token", _gradium_tokens),
        Vendor("deepgram", "DEEPGRAM_API_KEY", deepgram_front, DeepgramSTT, DeepgramTTS, "", "access_token",
               _deepgram_tokens),
        Vendor("cartesia", "CARTESIA_API_KEY", cartesia_front, CartesiaSTT, CartesiaTTS, "", "token", _cartesia_tokens),
        Vendor("elevenlabs", "ELEVENLABS_API_KEY", elevenlabs_front, ElevenLabsSTT, ElevenLabsTTS, "", "token",
               _elevenlabs_tokens),
    )
}  # fmt: skip


@pytest.fixture(params=list(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture(scope="module")
def audio() -> PCMAudio:
    """Half a second of "hello world" in scripted tones, 16 kHz."""
    sample = asyncio.run(make_speech_sample(ScriptedTTS(sample_rate=16000), "hello world", padding_s=0.05))
    return sample.audio


@contextlib.contextmanager
def front(vendor: Vendor, stt: STTProvider[Any] | None = None, tts: TTSProvider[Any] | None = None) -> Iterator[str]:
    """The vendor's front over ``stt`` and ``tts`` (by default the scripted ones), accepting the canary key."""
    stt = stt if stt is not None else ScriptedSTT(script="hello world")
    tts = tts if tts is not None else ScriptedTTS()
    with ThreadedServer(vendor.front(stt, tts, api_keys=[CANARY_KEY]), closing=(stt, tts)) as server:
        yield vendor.base_url(server.url)


@contextlib.contextmanager
def hostile(mode: str) -> Iterator[str]:
    with ThreadedServer(Hostile(mode)) as server:
        yield server.url


# --- what the library is asked to do ----------------------------------------------------------------------------


Operation = Callable[[], Awaitable[object]]


async def listen(stt: STTProvider[Any], audio: PCMAudio) -> list[object]:
    """Stream ``audio`` in 100 ms chunks as fast as it goes; the stream and its events."""
    async with stt.stream(format=audio.format) as stream:
        for start in range(0, len(audio.data), 3200):
            await stream.send_audio(audio.data[start : start + 3200])
        await stream.end()
        return [stream, await stream.collect()]


def operations(stt: STTProvider[Any], tts: TTSProvider[Any], audio: PCMAudio) -> dict[str, Operation]:
    """Every kind of request a backend makes: batch and streamed recognition and synthesis, and the voice list."""

    async def stream_stt() -> object:
        return await listen(stt, audio)

    async def stream_tts() -> object:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text("hello world")
            await stream.end()
            return [stream, await stream.collect()]

    return {
        "transcribe": lambda: stt.transcribe(audio),
        "stream-stt": stream_stt,
        "synthesize": lambda: tts.synthesize("hello world", format="wav"),
        "stream-tts": stream_tts,
        "voices": tts.voices,
    }


async def attempt(capture: Capture, where: str, operation: Operation) -> BaseException | None:
    """Run ``operation``, capturing what it returns or raises; a hang is cut after a few seconds."""
    try:
        async with asyncio.timeout(OP_TIMEOUT_S):
            result = await operation()
    except Exception as error:
        capture.exception(error, where)
        return error
    capture.objects(where, result)
    return None


async def run_all(
    capture: Capture,
    vendor: Vendor,
    where: str,
    stt: STTProvider[Any],
    tts: TTSProvider[Any],
    audio: PCMAudio,
    *,
    only: Collection[str] | None = None,
) -> dict[str, BaseException | None]:
    """Every operation (or those named in ``only``) and ``create_token`` with the providers' key; what each raised."""
    key = stt._api_key.value if stt._api_key is not None else ""
    outcomes = {}
    async with stt, tts:
        chosen = {**operations(stt, tts, audio), "create_token": lambda: vendor.mint(key, stt.settings.api_url)}
        for name, operation in chosen.items():
            if only is None or name in only:
                outcomes[name] = await attempt(capture, f"{vendor.name} {where} {name}", operation)
        capture.objects(f"{vendor.name} {where}", stt, tts, stt.settings, tts.settings)
    return outcomes


# --- the capture itself -----------------------------------------------------------------------------------------


def test_the_capture_sees_a_canary_wherever_it_is_shown(capfd: pytest.CaptureFixture[str]) -> None:
    """The search can fail: a canary logged (by a library logger, or by uvicorn's non-propagating ones), printed,
    raised deep in a chain, or held by a repr is found in each place."""
    sentinel = Capture()
    with ThreadedServer(Hostile("401")):
        sentinel.arm()
        try:
            logging.getLogger("some.library").debug("sending %s", CANARY_KEY)
            logging.getLogger("uvicorn.access").info('"GET /?next=%s HTTP/1.1" 200', quote_plus(FORGED_TOKEN))
            print(f"key={WRONG_KEY}")
            try:
                try:
                    raise ValueError(CANARY_KEY)
                except ValueError:
                    raise TransportError("wrapped")  # noqa: B904
            except TransportError as error:
                sentinel.exception(error, "a chain")

            @attrs.define
            class Holder:
                key: str

            Holder.__module__ = "speechbridge.fake"
            sentinel.objects("a holder", [{"inner": Holder(CANARY_KEY)}])
        finally:
            sentinel.disarm()
    out, _ = capfd.readouterr()
    sentinel.text("standard output", out)
    places = " | ".join(sentinel.leaks())
    for where in ("some.library", "uvicorn.access", "standard output", "ValueError in a chain",
                  "repr of Holder"):  # fmt: skip
        assert where in places
    assert quote_plus(FORGED_TOKEN) in places


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("> x-api-key: sk-1/2+3=", "> x-api-key: ***"),
        (
            "GET /a?token=t1&n=2 HTTP/1.1\\r\\nAuthorization: Token sk-9\\r\\n",
            "?token=***&n=2 HTTP/1.1\\r\\nAuthorization: ***\\r",
        ),
        ("GET /a HTTP/1.1\r\nxi-api-key: sk-9\r\nHost: h", "\r\nxi-api-key: ***\r\nHost: h"),
        ("< sec-websocket-protocol: token, sk-9", "< sec-websocket-protocol: ***"),
        ("unknown option key: 3, monkey: business", "unknown option key: 3, monkey: business"),
        ("GET /api/voices/?limit=0 HTTP/1.1", "GET /api/voices/?limit=0 HTTP/1.1"),
    ],
)
def test_redact_masks_credential_headers_and_query_values_only(text: str, shown: str) -> None:
    """What the log filters do to a line: credential headers (one per line, or a whole handshake) and secret query
    values are masked, other text is left as it is."""
    assert shown in transports.redact(text)
    assert "sk-" not in transports.redact(text) and "t1" not in transports.redact(text)


def test_the_log_filter_keeps_arguments_apart_unless_the_template_shows_a_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn's access formatter reads a record's arguments, so they stay apart; a template such as
    ``"> x-api-key: %s"`` makes a secret of its argument, so the whole message is masked."""
    logger = logging.getLogger("test_secrets.filter")
    logger.addFilter(transports.RedactSecrets())
    with caplog.at_level(1, logger=logger.name):
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/x?token=t1", "1.1", 200)
        logger.debug("> x-api-key: %s", CANARY_KEY)
        logger.debug("> %s: %s", "Authorization", f"Token {CANARY_KEY}")
    access, template, pair = caplog.records
    assert access.args == ("127.0.0.1:1", "GET", "/x?token=***", "1.1", 200)
    assert (template.getMessage(), pair.getMessage()) == ("> x-api-key: ***", "> Authorization: ***")


# --- success ----------------------------------------------------------------------------------------------------


@pytest.fixture(params=["websockets", "picows"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each WebSocket engine in turn (each logs handshakes its own way)."""
    if importlib.util.find_spec(request.param) is None:
        pytest.skip(f"{request.param} is not installed")
    monkeypatch.setenv("SPEECHBRIDGE_WEBSOCKET", request.param)
    return str(request.param)


async def test_success_paths_never_show_the_key_or_tokens(
    vendor: Vendor, engine: str, audio: PCMAudio, capture: Capture
) -> None:
    with front(vendor) as base_url:
        capture.arm()
        outcomes = await run_all(
            capture,
            vendor,
            "with the key",
            vendor.stt(base_url, api_key=CANARY_KEY),
            vendor.tts(base_url, api_key=CANARY_KEY),
            audio,
        )
        assert outcomes == dict.fromkeys(outcomes)
        tokens = await vendor.mint(CANARY_KEY, base_url)
        capture.secrets |= set(tokens.values())
        by_token = {use: {vendor.token_option: token} for use, token in tokens.items()}
        stt = vendor.stt(base_url, **by_token["stt"])
        tts = vendor.tts(base_url, **by_token["tts"])
        async with stt, tts:
            ops = operations(stt, tts, audio)
            for name in ("stream-stt", "stream-tts"):
                assert await attempt(capture, f"{vendor.name} with a token {name}", ops[name]) is None
            capture.objects(f"{vendor.name} with a token", stt, tts)
        if "batch" in by_token:
            async with vendor.stt(base_url, **by_token["batch"]) as batch:
                assert (
                    await attempt(capture, f"{vendor.name} batch with a token", lambda: batch.transcribe(audio)) is None
                )
    check(capture)


# --- refusals ---------------------------------------------------------------------------------------------------


async def test_a_wrong_key_or_forged_token_is_refused_without_being_shown(
    vendor: Vendor, engine: str, audio: PCMAudio, capture: Capture
) -> None:
    with front(vendor) as base_url:
        capture.arm()
        wrong = await run_all(
            capture,
            vendor,
            "wrong key",
            vendor.stt(base_url, api_key=WRONG_KEY),
            vendor.tts(base_url, api_key=WRONG_KEY),
            audio,
        )
        refused = {
            name: type(error).__name__ for name, error in wrong.items() if not isinstance(error, AuthenticationError)
        }
        assert refused == ({"voices": "NoneType"} if vendor.name == "deepgram" else {})  # Deepgram lists voices offline
        forged = {vendor.token_option: FORGED_TOKEN}
        async with vendor.stt(base_url, **forged) as stt, vendor.tts(base_url, **forged) as tts:
            ops = operations(stt, tts, audio)
            for name in ("stream-stt", "stream-tts"):
                error = await attempt(capture, f"{vendor.name} forged token {name}", ops[name])
                assert isinstance(error, AuthenticationError), (name, error)
    check(capture)


async def test_nothing_listening_and_bad_settings_never_show_the_key(
    vendor: Vendor, audio: PCMAudio, capture: Capture
) -> None:
    capture.arm()
    base_url = vendor.base_url(f"http://127.0.0.1:{free_port()}")
    outcomes = await run_all(
        capture,
        vendor,
        "nothing listening",
        vendor.stt(base_url, api_key=CANARY_KEY),
        vendor.tts(base_url, api_key=CANARY_KEY),
        audio,
    )
    offline = {"voices"} if vendor.name == "deepgram" else set()
    assert {name for name, error in outcomes.items() if not isinstance(error, TransportError)} == offline
    makers: dict[str, Callable[[], object]] = {
        "an unknown option": lambda: vendor.stt(base_url, api_key=CANARY_KEY, no_such_option=1),
        "a bad timeout": lambda: vendor.tts_class(api_key=CANARY_KEY, timeout_s=-1),
        "a bad base_url": lambda: vendor.stt_class(api_key=CANARY_KEY, base_url="ftp://127.0.0.1"),
        "no key": lambda: vendor.stt_class(base_url=base_url).stream(format="pcm_16000"),
    }
    for where, make in makers.items():
        try:
            made = make()
        except ConfigError as refused:
            capture.exception(refused, f"{vendor.name} {where}")
            continue
        assert isinstance(made, STTStream), f"{where} was accepted"
        async with contextlib.AsyncExitStack() as stack:
            opening = functools.partial(stack.enter_async_context, made)
            failure = await attempt(capture, f"{vendor.name} {where}", opening)
            assert isinstance(failure, ConfigError), (where, failure)
    async with vendor.stt(base_url, api_key=CANARY_KEY) as stt:
        failure = await attempt(capture, f"{vendor.name} per-call option", lambda: stt.transcribe(audio, language=7))
        assert isinstance(failure, ConfigError)
    check(capture)


# --- failures from the front ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError(f"too many requests for key {CANARY_KEY}", code=429),
        ProviderError(f"upstream failed for key {CANARY_KEY}", code=500, retryable=True),
    ],
    ids=["429", "500"],
)
async def test_server_errors_echoing_the_key_are_scrubbed(
    vendor: Vendor, error: ProviderError, audio: PCMAudio, capture: Capture
) -> None:
    """The front's backend fails with a message naming the key; the front passes it on in the vendor's error format
    (HTTP status, error frame or close reason), and the client scrubs it."""
    refusing = Refusing(error)
    with front(vendor, refusing.stt(), refusing.tts()) as base_url:
        capture.arm(server_logs=False)
        outcomes = await run_all(
            capture,
            vendor,
            f"refused {error.code}",
            vendor.stt(base_url, api_key=CANARY_KEY),
            vendor.tts(base_url, api_key=CANARY_KEY),
            audio,
        )
    failed = {name for name, outcome in outcomes.items() if isinstance(outcome, SpeechBridgeError)}
    assert {"transcribe", "stream-stt", "synthesize", "stream-tts"} <= failed
    check(capture)


GRADIUM_FAULTS: Final = {
    "drop": Faults(drop_after=2),
    "error-frame": Faults(error_after=2, error_message=f"key {CANARY_KEY} revoked"),
    "slow": Faults(delay_s=0.5),
}


@pytest.mark.parametrize("fault", list(GRADIUM_FAULTS))
async def test_gradium_faults_mid_stream(fault: str, audio: PCMAudio, capture: Capture) -> None:
    """Gradium's front drops the socket, sends an error frame naming the key, or answers slower than the timeout."""
    vendor, faults = VENDORS["gradium"], GRADIUM_FAULTS[fault]
    stt, tts = ScriptedSTT(script="hello world"), ScriptedTTS()
    app = gradium_front(stt, tts, api_keys=[CANARY_KEY], faults=faults)
    slow = fault == "slow"
    with ThreadedServer(app, closing=(stt, tts)) as server:
        capture.arm(server_logs=False)
        for multiplex in (False,) if slow else (False, True):
            base_url = vendor.base_url(server.url)
            options = {"api_key": CANARY_KEY, "multiplex": multiplex}
            options |= {"timeout_s": 0.2, "reliability": NO_RETRIES} if slow else {}
            outcomes = await run_all(
                capture, vendor, f"fault {fault} multiplex={multiplex}", vendor.stt(base_url, **options),
                vendor.tts(base_url, **options), audio, only=("transcribe", "stream-stt") if slow else None,
            )  # fmt: skip
            assert isinstance(outcomes["stream-stt"], SpeechBridgeError)
    check(capture)


# --- a hostile server -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", Hostile.MODES)
async def test_a_server_echoing_credentials_gets_them_scrubbed(
    vendor: Vendor, mode: str, audio: PCMAudio, capture: Capture
) -> None:
    """A server that answers 401/429/500, garbage, a close naming the key, a drop or nothing, and echoes the key or
    token it was sent into its answers; a silent server is only tried with a short timeout on REST and streams."""
    only = ("transcribe", "stream-stt") if mode == "silent" else None
    options = {"timeout_s": 0.5, "reliability": NO_RETRIES} if mode == "silent" else {}
    with hostile(mode) as url:
        capture.arm(server_logs=False)
        base_url = vendor.base_url(url)
        keyed, forged = {"api_key": CANARY_KEY, **options}, {vendor.token_option: FORGED_TOKEN, **options}
        outcomes = await run_all(
            capture, vendor, f"hostile {mode}", vendor.stt(base_url, **keyed), vendor.tts(base_url, **keyed), audio,
            only=only,
        )  # fmt: skip
        await run_all(
            capture, vendor, f"hostile {mode} forged token", vendor.stt(base_url, **forged),
            vendor.tts(base_url, **forged), audio, only=("stream-stt",) if only else ("stream-stt", "stream-tts"),
        )  # fmt: skip
    succeeded = {name for name, error in outcomes.items() if error is None}
    offline = {"voices"} if vendor.name == "deepgram" and only is None else set()
    # Deepgram takes a 200 answer to /v1/speak as audio, whatever it holds
    unchecked = {"synthesize"} if (vendor.name, mode) == ("deepgram", "garbage") else set()
    assert offline <= succeeded <= offline | unchecked
    check(capture)


async def test_garbage_echoing_credentials_is_not_quoted_in_errors(audio: PCMAudio, capture: Capture) -> None:
    """Errors quoting a malformed answer (the parsers know no secrets) still mask every key the process holds."""
    with hostile("garbage-echo") as url:
        capture.arm(server_logs=False)
        for vendor in VENDORS.values():
            keyed = {"api_key": CANARY_KEY, "reliability": NO_RETRIES}
            stt, tts = vendor.stt(vendor.base_url(url), **keyed), vendor.tts(vendor.base_url(url), **keyed)
            await run_all(capture, vendor, "garbage echo", stt, tts, audio)
    try:
        check(capture)
    finally:
        capture.seen.clear()


# --- the fronts' own logs ---------------------------------------------------------------------------------------


async def test_a_served_front_masks_tokens_and_keys_in_its_debug_logs(audio: PCMAudio, capture: Capture) -> None:
    """``serving.serve`` at debug level logs each request line and WebSocket handshake: tokens and keys are masked."""
    vendor = VENDORS["gradium"]
    stt, tts = ScriptedSTT(script="hello world"), ScriptedTTS()
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    app = gradium_front(stt, tts, api_keys=[CANARY_KEY])
    server = asyncio.create_task(serving.serve(app, port=0, log_level="trace", on_listening=listening.set_result))
    try:
        base_url = vendor.base_url(await listening)
        capture.arm()
        async with vendor.stt(base_url, api_key=CANARY_KEY) as keyed:
            assert await attempt(capture, "served front", lambda: keyed.transcribe(audio)) is None
            assert await attempt(capture, "served front", lambda: listen(keyed, audio)) is None
        tokens = await vendor.mint(CANARY_KEY, base_url)
        capture.secrets |= set(tokens.values())
        async with vendor.stt(base_url, token=tokens["stt"]) as by_token:
            assert await attempt(capture, "served front", lambda: listen(by_token, audio)) is None
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    logged = "\n".join(text for where, text in capture.seen if where.startswith("log record of uvicorn"))
    assert "WebSocket /api/speech/asr?token=***" in logged and "x-api-key: ***" in logged
    check(capture)


# --- the command line and compare reports -----------------------------------------------------------------------


def _config(fronts: dict[str, str], hostile_url: str) -> str:
    lines = []
    for name, base_url in fronts.items():
        lines += [f"[providers.{name}]", f'base_url = "{base_url}"', "timeout_s = 2.0", ""]
        lines += [f"[profiles.{name}]", f'stt = {{ provider = "{name}" }}', f'tts = {{ provider = "{name}" }}', ""]
    lines += ["[profiles.hostile]", f'stt = {{ provider = "gradium", base_url = "{hostile_url}/api" }}']
    lines += [f'tts = {{ provider = "gradium", base_url = "{hostile_url}/api" }}', ""]
    return "\n".join(lines)


@pytest.fixture
def all_fronts() -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(front(vendor)) for name, vendor in VENDORS.items()}


def test_the_cli_never_prints_the_key(
    all_fronts: dict[str, str], audio: PCMAudio, capture: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hostile("401") as hostile_url:
        (tmp_path / "speechbridge.toml").write_text(_config(all_fronts, hostile_url))
        (tmp_path / "hello.wav").write_bytes(encode(audio, AudioFormat("wav", 16000)))
        monkeypatch.chdir(tmp_path)
        capture.arm()
        codes = {}
        for name, vendor in VENDORS.items():
            for which, key in {"key": CANARY_KEY, "wrong key": WRONG_KEY}.items():
                monkeypatch.setenv(vendor.env, key)
                for label, argv in {
                    "batch": ["transcribe", "hello.wav", "--provider", name, "--json"],
                    "stream": ["transcribe", "hello.wav", "--provider", name, "--stream", "--fast", "--debug"],
                    "speak": ["speak", "hello world", "-o", f"{name}.wav", "--provider", name],
                    "voices": ["voices", "--provider", name, "--json", "--debug"],
                    "hostile": ["transcribe", "hello.wav", "--profile", "hostile", "--debug"],
                }.items():
                    codes[f"{name} {which} {label}"] = cli.main(argv)
        monkeypatch.setenv("GRADIUM_API_KEY", CANARY_KEY)
        (tmp_path / "keyed.toml").write_text(f'[providers.gradium]\napi_key = "{CANARY_KEY}"\n')
        codes["key in the file"] = cli.main(
            ["transcribe", "hello.wav", "--config", "keyed.toml", "--provider", "gradium"]
        )
        wrong = ["transcribe", "hello.wav", "--provider", "gradium", "-O", f"api_key={WRONG_KEY}", "--debug"]
        codes["wrong key as an option"] = cli.main(wrong)
    assert codes["key in the file"] == 2 and codes["wrong key as an option"] == 1
    for name in VENDORS:
        assert [codes[f"{name} key {label}"] for label in ("batch", "stream", "speak", "hostile")] == [0, 0, 0, 1]
        assert [codes[f"{name} wrong key {label}"] for label in ("batch", "stream", "speak")] == [1, 1, 1]


def test_compare_reports_never_hold_the_key(
    all_fronts: dict[str, str], audio: PCMAudio, capture: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hostile("429") as hostile_url:
        (tmp_path / "speechbridge.toml").write_text(_config(all_fronts, hostile_url))
        data = tmp_path / "data"
        data.mkdir()
        for name in ("one", "two"):
            (data / f"{name}.wav").write_bytes(encode(audio, AudioFormat("wav", 16000)))
            (data / f"{name}.txt").write_text("hello world")
        (tmp_path / "texts.txt").write_text("hello world\ngood morning\n")
        monkeypatch.chdir(tmp_path)
        for vendor in VENDORS.values():
            monkeypatch.setenv(vendor.env, CANARY_KEY)
        capture.arm()
        profiles = [arg for name in [*VENDORS, "hostile"] for arg in ("--profile", name)]
        code = cli.main(
            ["compare", "data", *profiles, "--mode", "both", "--fast", "--tts", "texts.txt", "--judge-stt", "gradium"]
        )
    assert code == 0
    written = sorted(path for path in (tmp_path / "compare-results").rglob("*") if path.is_file())
    assert {path.suffix for path in written} >= {".jsonl", ".csv", ".json", ".html"}
    for path in written:
        capture.text(f"compare file {path.name}", path.read_text(encoding="utf-8", errors="replace"))
    failures = [json.loads(line) for line in (tmp_path / "compare-results" / "stt_runs.jsonl").read_text().splitlines()]
    assert any(run["error"] and run["profile"] == "hostile" for run in failures)
    check(capture)
