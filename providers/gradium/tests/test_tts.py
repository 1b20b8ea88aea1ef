"""GradiumTTS against the Gradium front (``server.make_app``) on 127.0.0.1.

Backed by the scripted TTS the front's audio and word timings are exact, so what the client returns is compared
with what ScriptedTTS makes on its own. A wire log (ASGI middleware in front of the app) records what the client
sends, and how many WebSockets it opened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Final, TypeVar

import attrs
import pytest
from speechbridge_gradium.server import Faults, make_app
from speechbridge_gradium.settings import DEFAULT_VOICE_ID
from speechbridge_gradium.tts import GradiumTTS, output_format_for, split_whole_words

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProviderError,
    QuotaExceeded,
    TransportError,
    UnknownVoice,
)
from speechbridge.events import AudioChunk, Flushed, Ready, StreamEnded, WordTiming
from speechbridge.testing import ScriptedTTS
from speechbridge.testing.servers import LiveServer
from speechbridge.tts import Synthesis

T = TypeVar("T")
KEY: Final = "gd_test_key_do_not_print"
TEXT: Final = "Hello there. The quick brown fox jumps over the lazy dog."
PIECES: Final = ("Hello there. The quick ", "brown fox jum", "ps  over\nthe ", "lazy", " dog.")


class WireLog:
    """ASGI middleware that records what clients send (JSON bodies and WebSocket frames) and counts WebSockets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (path, message)
        self.sockets = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            self.sockets += 1

        async def recording() -> dict[str, Any]:
            message = await receive()
            payload = message.get("text") or message.get("body")
            if message["type"] in ("http.request", "websocket.receive") and payload:
                self.sent.append((scope["path"], json.loads(payload)))
            return message

        await self.app(scope, recording, send)

    def bodies(self) -> list[dict[str, Any]]:
        return [message for path, message in self.sent if path.endswith("/post/speech/tts")]

    def frames(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for path, m in self.sent if path.endswith("/speech/tts") and kind in (None, m["type"])]


@attrs.frozen
class Front:
    url: str
    wire: WireLog

    def tts(self, **options: Any) -> GradiumTTS:
        return GradiumTTS(api_key=options.pop("api_key", KEY), base_url=self.url + "/api", **options)


async def serve(tts: Any, **options: Any) -> AsyncIterator[Front]:
    wire = WireLog(make_app(None, tts, api_keys=[KEY], **options))
    async with LiveServer(wire) as live:
        yield Front(live.url, wire)


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async for served in serve(ScriptedTTS()):
        yield served


async def within(awaitable: Awaitable[T], seconds: float = 20.0) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def reference(text: str, format: str = "pcm_24000") -> Synthesis:
    """What the scripted voice behind the front says for ``text``."""
    return await ScriptedTTS().synthesize(text, format=format)


def audio_of(events: list[Any]) -> bytes:
    return b"".join(event.data for event in events if isinstance(event, AudioChunk))


def words_of(events: list[Any]) -> list[WordTiming]:
    return [event for event in events if isinstance(event, WordTiming)]


def assert_same_timings(got: list[WordTiming] | tuple[WordTiming, ...], expected: tuple[WordTiming, ...]) -> None:
    assert [word.text for word in got] == [word.text for word in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.start_s == pytest.approx(theirs.start_s, abs=1e-3)
        assert mine.end_s == pytest.approx(theirs.end_s, abs=1e-3)


# --- pure helpers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "output_format", "native"),
    [
        ("pcm_16000", "pcm_16000", "pcm_16000"),
        ("pcm_48000", "pcm_48000", "pcm_48000"),
        ("mulaw_8000", "ulaw_8000", "mulaw_8000"),
        ("alaw_8000", "alaw_8000", "alaw_8000"),
        ("opus", "opus", "ogg_opus_48000"),
        ("mulaw_16000", "pcm_16000", "pcm_16000"),
        ("f32_22050", "pcm_22050", "pcm_22050"),
        ("pcm_11025", "pcm_48000", "pcm_48000"),
        ("flac", "pcm_48000", "pcm_48000"),
        ("wav_16000", "pcm_16000", "pcm_16000"),
        ("opus_16000", "pcm_16000", "pcm_16000"),
    ],
)
def test_output_format_is_what_gradium_makes_closest(wanted: str, output_format: str, native: str):
    assert output_format_for(AudioFormat.parse(wanted)) == (output_format, AudioFormat.parse(native))


def test_output_format_refuses_several_channels():
    with pytest.raises(AudioFormatError, match="mono"):
        output_format_for(AudioFormat.parse("pcm_16000x2"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brown fox jum", ("brown fox", "jum")),
        ("Hello there. ", ("Hello there.", "")),
        ("unfinished", ("", "unfinished")),
        ("  \n ", ("", "")),
        (' <break time="1s" /> and', ('<break time="1s" />', "and")),
    ],
)
def test_split_whole_words(text: str, expected: tuple[str, str]):
    assert split_whole_words(text) == expected


# --- REST -------------------------------------------------------------------------------------------------------


async def test_synthesize_raw_audio_when_no_word_timings_are_wanted(front: Front):
    async with front.tts(word_timestamps=False) as tts:
        synthesis = await within(tts.synthesize(TEXT, format="pcm_24000"))
    expected = await reference(TEXT)
    assert synthesis.audio == expected.audio
    assert synthesis.words == ()
    assert synthesis.format == AudioFormat.pcm16(24000)
    assert synthesis.duration_s == pytest.approx(expected.duration_s)
    [body] = front.wire.bodies()
    assert body == {
        "text": TEXT,
        "voice_id": DEFAULT_VOICE_ID,
        "output_format": "pcm_24000",
        "model_name": "default",
        "only_audio": True,
    }


async def test_synthesize_reads_audio_and_word_timings_from_ndjson(front: Front):
    async with front.tts() as tts:
        synthesis = await within(tts.synthesize(TEXT, format="pcm_24000"))
    expected = await reference(TEXT)
    assert synthesis.audio == expected.audio
    assert_same_timings(synthesis.words, expected.words)
    assert front.wire.bodies()[0]["only_audio"] is False


async def test_synthesize_sends_voice_settings(front: Front):
    async with front.tts(padding_bonus=-2.0, temp=0.3, pronunciation_id="dict-1", voice="square") as tts:
        fast = await within(tts.synthesize(TEXT, format="pcm_24000"))
    body = front.wire.bodies()[0]
    assert body["voice_id"] == "square"
    assert json.loads(body["json_config"]) == {"temp": 0.3, "padding_bonus": -2.0}
    assert body["pronunciation_id"] == "dict-1"
    assert fast.duration_s is not None and fast.duration_s < (await reference(TEXT)).duration_s * 0.9


@pytest.mark.parametrize(
    ("wanted", "output_format", "produced"),
    [
        ("mulaw_8000", "ulaw_8000", "mulaw_8000"),
        ("alaw_8000", "alaw_8000", "alaw_8000"),
        ("pcm_16000", "pcm_16000", "pcm_16000"),
        ("opus", "opus", "ogg_opus_48000"),
        ("flac", "pcm_48000", "flac_48000"),
        ("f32_22050", "pcm_22050", "f32_22050"),
        ("mulaw_16000", "pcm_16000", "mulaw_16000"),
        ("wav", "pcm_48000", "wav_48000"),
        ("mp3", "pcm_48000", "mp3_48000"),
        ("pcm_11025", "pcm_48000", "pcm_11025"),
    ],
)
async def test_synthesize_formats_native_or_converted(front: Front, wanted: str, output_format: str, produced: str):
    async with front.tts() as tts:
        synthesis = await within(tts.synthesize(TEXT, format=wanted))
    assert front.wire.bodies()[0]["output_format"] == output_format
    assert synthesis.format == AudioFormat.parse(produced)
    pcm = decode(synthesis.audio, synthesis.format if synthesis.format.is_raw else None)
    expected_s = (await reference(TEXT)).duration_s
    assert expected_s is not None
    assert pcm.duration_s == pytest.approx(expected_s, abs=0.03 if synthesis.format.encoding != "ogg_opus" else 0.1)
    if synthesis.format.encoding not in ("ogg_opus", "mp3"):
        assert pcm.sample_rate == synthesis.format.sample_rate
    assert max(abs(int.from_bytes(pcm.data[i : i + 2], "little", signed=True)) for i in range(0, 20000, 2)) > 1000


# --- WebSocket streaming ----------------------------------------------------------------------------------------


async def test_stream_sends_whole_words_and_returns_the_voice_exactly(front: Front):
    async with front.tts() as tts, tts.stream(format="pcm_24000") as stream:
        for piece in PIECES:
            await stream.send_text(piece)
        await stream.end()
        events = await within(stream.collect())
    assert isinstance(events[0], Ready) and isinstance(events[-1], StreamEnded)
    expected = await reference(TEXT)
    assert audio_of(events) == expected.audio
    assert_same_timings(words_of(events), expected.words)
    texts = [frame["text"] for frame in front.wire.frames("text")]
    assert texts == ["Hello there. The quick", "brown fox", "jumps  over\nthe", "lazy", "dog."]
    assert " ".join(texts).split() == TEXT.split()
    assert [frame["type"] for frame in front.wire.frames()] == ["setup", *["text"] * 5, "end_of_stream"]


async def test_stream_setup_carries_the_settings(front: Front):
    async with front.tts(padding_bonus=1.0, pronunciation_id="dict-1") as tts:
        async with tts.stream(format="mulaw_8000", voice="sine") as stream:
            await stream.send_text("Hi.")
            await stream.end()
            events = await within(stream.collect())
    assert {chunk.format for chunk in events if isinstance(chunk, AudioChunk)} == {AudioFormat("mulaw", 8000)}
    assert front.wire.frames("setup") == [
        {
            "type": "setup",
            "model_name": "default",
            "output_format": "ulaw_8000",
            "voice_id": "sine",
            "pronunciation_id": "dict-1",
            "json_config": {"padding_bonus": 1.0},
        }
    ]


@pytest.mark.parametrize(("wanted", "output_format"), [("f32_16000", "pcm_16000"), ("wav", "pcm_48000")])
async def test_stream_converts_what_gradium_does_not_make(front: Front, wanted: str, output_format: str):
    async with front.tts() as tts, tts.stream(format=wanted) as stream:
        await stream.send_text(TEXT)
        await stream.end()
        events = await within(stream.collect())
    assert front.wire.frames("setup")[0]["output_format"] == output_format
    pcm = decode(audio_of(events), stream.format if stream.format.is_raw else None)
    assert pcm.duration_s == pytest.approx((await reference(TEXT)).duration_s, abs=0.03)


async def test_flush_is_confirmed_once_the_audio_of_the_text_so_far_is_out(front: Front):
    first, second = "Hello there, general", "Kenobi. You are"
    async with front.tts() as tts, tts.stream(format="pcm_24000") as stream:
        await stream.send_text(first + " ")
        flushed = await within(stream.flush())
        again = await within(stream.flush())  # nothing new to speak: confirmed at once
        await stream.send_text(second)
        await stream.end()
        events = await within(stream.collect())
    assert (flushed, again) == (Flushed(1), Flushed(2))
    cut = events.index(flushed)
    assert events[cut + 1] == again
    before, after = events[:cut], events[cut + 1 :]
    spoken_first, spoken_second = await reference(first), await reference(second)
    assert audio_of(before) == spoken_first.audio
    assert audio_of(after) == spoken_second.audio
    assert_same_timings(words_of(before), spoken_first.words)
    assert spoken_first.duration_s is not None
    shifted = tuple(
        attrs.evolve(word, start_s=word.start_s + spoken_first.duration_s, end_s=word.end_s + spoken_first.duration_s)
        for word in spoken_second.words
    )
    assert_same_timings(words_of(after), shifted)
    kinds = [frame["type"] for frame in front.wire.frames()]
    assert kinds == ["setup", "text", "end_of_stream", "setup", "text", "text", "end_of_stream"]
    assert front.wire.sockets == 2  # not multiplexed: a socket per Gradium request


async def test_flush_speaks_a_word_cut_short(front: Front):
    async with front.tts() as tts, tts.stream(format="pcm_24000") as stream:
        await stream.send_text("Hello gen")
        await within(stream.flush())
        await stream.end()
        events = await within(stream.collect())
    assert [word.text for word in words_of(events)] == ["Hello", "gen"]
    assert [frame["text"] for frame in front.wire.frames("text")] == ["Hello", "gen"]


async def test_multiplexed_streams_share_one_socket(front: Front):
    texts = ("One small step for a man.", "A giant leap for mankind.", "Houston, we have had a problem.")

    async def speak(tts: GradiumTTS, text: str) -> list[Any]:
        async with tts.stream(format="pcm_24000") as stream:
            words = text.split(" ")
            await stream.send_text(" ".join(words[:2]) + " ")
            await within(stream.flush())
            await stream.send_text(" ".join(words[2:]))
            await stream.end()
            return await within(stream.collect())

    async with front.tts(multiplex=True) as tts:
        results = await within(asyncio.gather(*(speak(tts, text) for text in texts)))
        after = await within(speak(tts, "And one more."))
    assert front.wire.sockets == 1
    for text, events in zip((*texts, "And one more."), (*results, after), strict=True):
        assert [word.text for word in words_of(events)] == text.split()
        split = text.split(" ")
        halves = (await reference(" ".join(split[:2]))).audio + (await reference(" ".join(split[2:]))).audio
        assert audio_of(events) == halves
    setups = front.wire.frames("setup")
    assert len(setups) == 8 and len({setup["client_req_id"] for setup in setups}) == 8
    assert all(setup["close_ws_on_eos"] is False for setup in setups)
    assert all("client_req_id" in frame for frame in front.wire.frames())


async def test_stream_refuses_containers_before_connecting(front: Front):
    async with front.tts() as tts:
        with pytest.raises(AudioFormatError):
            tts.stream(format="mp3")
        with pytest.raises(AudioFormatError, match="mono"):
            await tts.synthesize(TEXT, format="pcm_16000x2")
    assert front.wire.sent == [] and front.wire.sockets == 0


# --- errors -----------------------------------------------------------------------------------------------------


async def test_unknown_voice_is_a_typed_config_error(front: Front):
    async with front.tts(voice="NoSuchVoice00000") as tts:
        with pytest.raises(UnknownVoice) as batch:
            await within(tts.synthesize(TEXT))
        with pytest.raises(UnknownVoice) as streamed:
            async with tts.stream(format="pcm_16000") as stream:
                await stream.send_text(TEXT)
    for error in (batch.value, streamed.value):
        assert isinstance(error, ConfigError) and isinstance(error, InvalidRequest)
        assert error.code == 1011 and not error.retryable
        assert "NoSuchVoice00000" in str(error)


async def test_bad_key_is_an_authentication_error_that_never_shows_the_key(front: Front):
    wrong = "gd_wrong_key_secret_value"
    async with front.tts(api_key=wrong) as tts:
        with pytest.raises(AuthenticationError) as batch:
            await within(tts.synthesize(TEXT))
        with pytest.raises(AuthenticationError) as streamed:
            async with tts.stream(format="pcm_16000"):
                pass
        assert wrong not in repr(tts)
    for error in (batch.value, streamed.value):
        assert wrong not in str(error) and wrong not in repr(error)
        assert error.code == 1008


async def test_missing_key_fails_before_connecting(front: Front, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GRADIUM_API_KEY", raising=False)
    tts = GradiumTTS(base_url=front.url + "/api")
    with pytest.raises(ConfigError, match="GRADIUM_API_KEY"):
        await tts.synthesize(TEXT)
    with pytest.raises(ConfigError, match="GRADIUM_API_KEY"):
        async with tts.stream():
            pass
    assert front.wire.sent == []


@pytest.mark.parametrize(
    ("faults", "error_type", "code"),
    [
        (Faults(error_after=3, error_code=1011), ProviderError, 1011),
        (Faults(error_after=2, error_code=1008, error_message="out of credits"), QuotaExceeded, 1008),
        (Faults(drop_after=3), TransportError, None),
    ],
)
async def test_server_failures_mid_stream_are_typed(faults: Faults, error_type: type[Exception], code: int | None):
    async for served in serve(ScriptedTTS(), faults=faults):
        async with served.tts() as tts, tts.stream(format="pcm_24000") as stream:
            await stream.send_text(TEXT)
            await stream.end()
            with pytest.raises(error_type) as info:
                await within(stream.collect())
        assert getattr(info.value, "code", None) == code
        if code == 1011:
            assert info.value.retryable


async def test_server_failures_over_rest_are_typed():
    async for served in serve(ScriptedTTS(), faults=Faults(reject_setup=1008, error_message="API key is revoked")):
        async with served.tts() as tts:
            with pytest.raises(AuthenticationError):
                await within(tts.synthesize(TEXT))
    async for served in serve(ScriptedTTS(), faults=Faults(error_after=4, error_code=1011)):
        async with served.tts() as tts:
            with pytest.raises(ProviderError) as info:
                await within(tts.synthesize(TEXT))
            assert info.value.retryable
    async for served in serve(ScriptedTTS(), faults=Faults(drop_after=4)):
        async with served.tts() as tts:
            with pytest.raises(TransportError):
                await within(tts.synthesize(TEXT))
            with pytest.raises(ProviderError):
                await within(tts.synthesize(TEXT, word_timestamps=False))


# --- the local backend ------------------------------------------------------------------------------------------


async def test_local_voice_behind_the_front():
    local = pytest.importorskip("speechbridge_local.tts").LocalTTS()
    async for served in serve(local):
        async with served.tts() as tts:
            synthesis = await within(tts.synthesize("Hello from the local voice.", format="pcm_16000"), 60)
            async with tts.stream(format="pcm_16000") as stream:
                await stream.send_text("Hello from ")
                await stream.send_text("the local voice.")
                await stream.end()
                events = await within(stream.collect(), 60)
    assert synthesis.words == ()  # the local voice has no word timings, so Gradium's answer carries none
    assert 0.8 < decode(synthesis.audio, synthesis.format).duration_s < 5
    streamed = decode(audio_of(events), "pcm_16000")
    assert 0.8 < streamed.duration_s < 5
