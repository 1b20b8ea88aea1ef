"""FallbackSTT and FallbackTTS: failover on errors and silence, mid-stream replay, probes, options, the contract.

The chains here are made of "run" providers: each word is a run of one sample value (a run per word, silence between
words), which the run STT reads back exactly wherever it starts listening. So a replay from the wrong place shows up
as a lost or doubled word, and the word times show whether the timeline stayed continuous. Each run provider can be
told to fail (``Trouble``). One test of each kind goes through the Gradium front on 127.0.0.1 instead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from array import array
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, ClassVar, Final, TypeVar

import attrs
import pytest
from speechbridge_gradium.server import Faults, make_app
from speechbridge_gradium.stt import GradiumSTT
from speechbridge_gradium.tts import GradiumTTS

from speechbridge.audio import AudioFormat, PCMAudio, decode, encode
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
    TransportError,
    UnknownVoice,
    UnsupportedFeature,
)
from speechbridge.events import AudioChunk, Flushed, Ready, StreamEnded, Transcript, Word, WordTiming
from speechbridge.fallback import AllProvidersFailed, FallbackSTT, FallbackTTS, ProviderSwitched, is_failover_reason
from speechbridge.settings import one_of
from speechbridge.stt import STTCapabilities, STTProvider, STTStream
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, SpeechSample
from speechbridge.testing.contract import STTContract, TTSContract
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

T = TypeVar("T")
RATE: Final = 16000
CHAR_S: Final = 0.03
GAP_S: Final = 0.1
VOCAB: Final = ("hello", "world", "again", "and", "then", "some", "more", "words", "quick", "brown", "fox", "ok")
KEY: Final = "gd_test_key"
FIRST: Final = "hello world again"
SECOND: Final = "and then some more words"
FAST: Final[dict[str, Any]] = {"no_output_timeout_s": 0.3, "probe_interval_s": 60.0}


def value_of(word: str) -> int:
    return 3000 + 150 * VOCAB.index(word)


WORD_OF: Final = {value_of(word): word for word in VOCAB}


def _samples(pcm: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


class Speaker:
    """Words in, run audio and exact word timings out; a gap comes before every word but the first."""

    def __init__(self, sign: int = 1) -> None:
        self.sign = sign
        self.samples = 0

    def speak(self, word: str) -> tuple[bytes, WordTiming]:
        gap = round(GAP_S * RATE) if self.samples else 0
        length = round(len(word) * CHAR_S * RATE)
        start = self.samples + gap
        self.samples = start + length
        run = (self.sign * value_of(word)).to_bytes(2, "little", signed=True) * length
        return bytes(2 * gap) + run, WordTiming(word, start / RATE, self.samples / RATE)


def speak(text: str) -> bytes:
    speaker = Speaker()
    return b"".join(speaker.speak(word)[0] for word in text.split())


class Reader:
    """Run audio in, words out: a run of one non-zero value is a word, wherever the audio starts."""

    def __init__(self) -> None:
        self.position = 0
        self.value = 0
        self.start = 0
        self.words: list[Word] = []

    def feed(self, pcm: bytes) -> None:
        for value in _samples(pcm):
            if value != self.value:
                self._close()
                self.value, self.start = value, self.position
            self.position += 1

    def _close(self) -> None:
        if self.value:
            self.words.append(Word(WORD_OF.get(abs(self.value), "?"), self.start / RATE, self.position / RATE))
        self.value, self.start = 0, self.position

    def take(self) -> list[Word]:
        self._close()
        words, self.words = self.words, []
        return words


def read(pcm: bytes) -> str:
    reader = Reader()
    reader.feed(pcm)
    return " ".join(word.text for word in reader.take())


@attrs.define
class Trouble:
    """What goes wrong with a run provider: ``error`` refuses requests and streams; a stream fails with ``drop`` once
    it has taken (STT) or given (TTS) ``break_after_s`` of audio, or at a flush with ``fail_flush``; ``mute`` takes
    everything and answers nothing."""

    error: SpeechBridgeError | None = None
    break_after_s: float | None = None
    fail_flush: bool = False
    mute: bool = False
    drop: SpeechBridgeError = attrs.field(factory=lambda: TransportError("connection dropped"))
    calls: int = 0


def _is_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be True or False")


@attrs.frozen
class RunSTTSettings:
    language: str | None = attrs.field(default=None, validator=one_of("en", "fr"))
    interim_results: bool = attrs.field(default=True, validator=_is_bool)


class RunSTTStream(STTStream):
    def __init__(self, provider: RunSTT, format: AudioFormat, settings: RunSTTSettings) -> None:
        super().__init__(provider.name, format=format, wire_format=AudioFormat.pcm16(RATE))
        self.trouble = provider.trouble
        self.settings = settings
        self.reader = Reader()
        self.taken_s = 0.0

    async def _open(self) -> None:
        if self.trouble.error is not None:
            raise self.trouble.error
        self._emit(Ready(sample_rate=RATE))

    async def _send_frame(self, frame: bytes) -> None:
        self.taken_s += len(frame) / 2 / RATE
        if self.trouble.break_after_s is not None and self.taken_s >= self.trouble.break_after_s:
            self._fail(self.trouble.drop)
        elif not self.trouble.mute:
            heard = len(self.reader.words)
            self.reader.feed(frame)
            if self.settings.interim_results and len(self.reader.words) > heard:
                self._emit(self._transcript(self.reader.words, is_final=False))

    async def _send_flush(self, flush_id: int) -> None:
        if self.trouble.fail_flush:
            self._fail(self.trouble.drop)
        elif not self.trouble.mute:
            self._final()
            self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        if not self.trouble.mute:
            self._final()
            self._emit(StreamEnded())

    def _final(self) -> None:
        words = self.reader.take()
        if words:
            self._emit(self._transcript(words, is_final=True))

    def _transcript(self, words: list[Word], *, is_final: bool) -> Transcript:
        text = " ".join(word.text for word in words)
        language = self.settings.language
        return Transcript(text, is_final, words[0].start_s, words[-1].end_s, tuple(words), language=language)


class RunSTT(STTProvider[RunSTTSettings]):
    """Reads run audio back into words, exactly."""

    name: ClassVar[str] = "run"
    Settings: ClassVar[type[Any]] = RunSTTSettings
    capabilities: ClassVar[STTCapabilities] = STTCapabilities(interim_results=True, word_timestamps=True, flush=True)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.trouble = Trouble()
        self.streams = 0

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: RunSTTSettings) -> Transcript:
        self.trouble.calls += 1
        if self.trouble.error is not None:
            raise self.trouble.error
        if self.trouble.mute:
            await asyncio.Event().wait()
        words = Reader()
        words.feed(decode(audio, format).data)
        found = words.take()
        text = " ".join(word.text for word in found)
        return Transcript(text, True, words=tuple(found), language=settings.language)

    def _stream(self, format: AudioFormat, settings: RunSTTSettings) -> STTStream:
        self.streams += 1
        return RunSTTStream(self, format, settings)


class PrimarySTT(RunSTT):
    name = "primary"


class StandbySTT(RunSTT):
    name = "standby"


class PlainStandbySTT(RunSTT):
    """A standby without interim results or word times."""

    name = "plain"
    capabilities = STTCapabilities(flush=True)


@attrs.frozen
class RunTTSSettings:
    voice: str = attrs.field(default="up", validator=one_of("up", "down"))
    language: str | None = attrs.field(default=None, validator=one_of("en", "fr"))


class RunTTSStream(TTSStream):
    def __init__(self, provider: RunTTS, format: AudioFormat, settings: RunTTSSettings) -> None:
        super().__init__(provider.name, format=format, native_format=AudioFormat.pcm16(RATE))
        self.trouble = provider.trouble
        self.timed = provider.capabilities.word_timestamps
        self.speaker = Speaker(1 if settings.voice == "up" else -1)
        self.text = ""

    async def _open(self) -> None:
        if self.trouble.error is not None:
            raise self.trouble.error
        self._emit(Ready(sample_rate=RATE))

    async def _send_text(self, text: str) -> None:
        self.text += text
        words = self.text.split()
        if words and not self.text[-1].isspace():
            self.text = words.pop()
        else:
            self.text = ""
        self._speak(words)

    async def _send_flush(self, flush_id: int) -> None:
        if self.trouble.fail_flush:
            self._fail(self.trouble.drop)
        elif not self.trouble.mute:
            self._speak(self.text.split())
            self.text = ""
            self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        if not self.trouble.mute:
            self._speak(self.text.split())
            self._emit_audio_end()
            self._emit(StreamEnded())

    def _speak(self, words: list[str]) -> None:
        for word in words:
            if self.trouble.mute:
                return
            pcm, timing = self.speaker.speak(word)
            if self.timed:
                self._emit(timing)
            limit = self.trouble.break_after_s
            if limit is not None and timing.end_s > limit:
                self._emit_audio(pcm[: len(pcm) - 2 * round((timing.end_s - limit) * RATE)])
                self._fail(self.trouble.drop)
                return
            self._emit_audio(pcm)


class RunTTS(TTSProvider[RunTTSSettings]):
    """Speaks words as runs; voice "down" speaks them with negative samples."""

    name: ClassVar[str] = "run"
    Settings: ClassVar[type[Any]] = RunTTSSettings
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities(word_timestamps=True)
    default_format: ClassVar[AudioFormat] = AudioFormat("wav")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.trouble = Trouble()

    async def voices(self) -> list[Voice]:
        return [Voice("up", "Up"), Voice("down", "Down")]

    async def _synthesize(self, text: str, format: AudioFormat, settings: RunTTSSettings) -> Synthesis:
        self.trouble.calls += 1
        if self.trouble.error is not None:
            raise self.trouble.error
        if self.trouble.mute:
            await asyncio.Event().wait()
        speaker = Speaker(1 if settings.voice == "up" else -1)
        spoken = [speaker.speak(word) for word in text.split()]
        audio = PCMAudio(b"".join(pcm for pcm, _ in spoken), RATE)
        return Synthesis(encode(audio, format), format, tuple(timing for _, timing in spoken), audio.duration_s)

    def _stream(self, format: AudioFormat, settings: RunTTSSettings) -> TTSStream:
        return RunTTSStream(self, format, settings)


class PrimaryTTS(RunTTS):
    name = "primary"


class StandbyTTS(RunTTS):
    name = "standby"


class UntimedTTS(RunTTS):
    name = "untimed"
    capabilities = TTSCapabilities()


async def within(awaitable: Awaitable[T], seconds: float = 10.0) -> T:
    return await asyncio.wait_for(awaitable, seconds)


def finals(events: list[Any]) -> list[Transcript]:
    return [event for event in events if isinstance(event, Transcript) and event.is_final]


def switches(events: list[Any]) -> list[ProviderSwitched]:
    return [event for event in events if isinstance(event, ProviderSwitched)]


def pcm_of(events: list[Any]) -> bytes:
    return b"".join(event.data for event in events if isinstance(event, AudioChunk))


async def send(stream: STTStream, audio: bytes, chunk: int = 1000) -> None:
    for start in range(0, len(audio), chunk):
        await stream.send_audio(audio[start : start + chunk])


@pytest.fixture
async def stt_chain() -> AsyncIterator[tuple[FallbackSTT, PrimarySTT, StandbySTT]]:
    primary, standby = PrimarySTT(), StandbySTT()
    chain = FallbackSTT([primary, standby], **FAST)
    yield chain, primary, standby
    await chain.aclose()


@pytest.fixture
async def tts_chain() -> AsyncIterator[tuple[FallbackTTS, PrimaryTTS, StandbyTTS]]:
    primary, standby = PrimaryTTS(), StandbyTTS()
    chain = FallbackTTS([primary, standby], **FAST)
    yield chain, primary, standby
    await chain.aclose()


# --- which failures move on --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        TransportError("connection refused"),
        ProviderError("internal error", code=1011, retryable=True),
        RateLimitError("slow down", retry_after=1.0),
        AuthenticationError("API key is revoked", code=401),
        QuotaExceeded("out of credits", code=402),
    ],
)
def test_provider_failures_move_on(error: SpeechBridgeError) -> None:
    assert is_failover_reason(error)


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("unknown model", code=400),
        UnknownVoice("no such voice"),
        AudioFormatError("truncated audio"),
        ConfigError("bad option"),
        UnsupportedFeature("no batch"),
        ProviderError("refused", code=400),
    ],
)
def test_request_errors_do_not_move_on(error: SpeechBridgeError) -> None:
    assert not is_failover_reason(error)


# --- batch --------------------------------------------------------------------------------------------------------


async def test_transcribe_moves_on_a_provider_failure_and_logs_it(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT], caplog: pytest.LogCaptureFixture
) -> None:
    chain, primary, standby = stt_chain
    primary.trouble.error = AuthenticationError(f"key {KEY[:3]}... is revoked", provider="primary", code=401)
    with caplog.at_level(logging.INFO, logger="speechbridge.fallback"):
        result = await within(chain.transcribe(PCMAudio(speak(FIRST), RATE), language="fr"))
    assert result.text == FIRST and result.language == "fr"
    assert (primary.trouble.calls, standby.trouble.calls) == (1, 1)
    assert chain.active is standby
    assert "primary: key gd_... is revoked" in caplog.text and "new requests go to standby" in caplog.text
    assert KEY not in caplog.text
    await within(chain.transcribe(PCMAudio(speak(FIRST), RATE)))
    assert (primary.trouble.calls, standby.trouble.calls) == (1, 2), "a provider that is down is tried last"


async def test_errors_about_the_request_are_raised_at_once(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, standby = stt_chain
    primary.trouble.error = InvalidRequest("unknown model", provider="primary", code=400)
    with pytest.raises(InvalidRequest):
        await within(chain.transcribe(PCMAudio(speak(FIRST), RATE)))
    primary.trouble.error = None
    with pytest.raises(AudioFormatError):
        await within(chain.transcribe(b"this is text, not audio"))
    assert standby.trouble.calls == 0 and chain.active is primary


async def test_a_provider_that_answers_nothing_is_left_after_the_watchdog(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, _ = stt_chain
    primary.trouble.mute = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    audio = PCMAudio(speak("ok"), RATE)
    result = await within(chain.transcribe(audio))
    assert result.text == "ok"
    assert 0.3 + audio.duration_s <= loop.time() - started < 2.0


async def test_every_provider_failing_is_one_error_naming_each_failure(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, standby = stt_chain
    primary.trouble.error = TransportError("connection refused", provider="primary")
    standby.trouble.error = QuotaExceeded("out of credits", provider="standby", code=402)
    with pytest.raises(AllProvidersFailed) as caught:
        await within(chain.transcribe(PCMAudio(speak(FIRST), RATE)))
    error = caught.value
    assert [name for name, _ in error.failures] == ["primary", "standby"]
    assert "primary: connection refused" in str(error) and "standby: out of credits [code 402]" in str(error)
    assert not error.retryable and isinstance(error.__cause__, QuotaExceeded)


async def test_synthesize_moves_on_and_each_provider_speaks_with_its_own_voice(
    tts_chain: tuple[FallbackTTS, PrimaryTTS, StandbyTTS],
) -> None:
    chain, primary, standby = tts_chain
    primary.trouble.error = ProviderError("internal error", provider="primary", code=500, retryable=True)
    synthesis = await within(chain.synthesize("hello world", voice={"primary": "up", "standby": "down"}))
    pcm = decode(synthesis.audio).data
    assert read(pcm) == "hello world" and min(_samples(pcm)) < 0, "the standby spoke with its own voice"
    assert synthesis.format == AudioFormat("wav") and [w.text for w in synthesis.words] == ["hello", "world"]
    with pytest.raises(ConfigError, match="'other', which is not in the fallback chain") as caught:
        await chain.synthesize("hello", voice={"other": "up"})
    assert caught.value.allowed == ("primary", "standby")
    with pytest.raises(ConfigError, match="voice"):
        await chain.synthesize("hello", voice="no-such-voice")
    standby.trouble.error = UnknownVoice("the vendor has no such voice", provider="standby")
    with pytest.raises(UnknownVoice):
        await chain.synthesize("hello")
    assert primary.trouble.calls == 1, "an error about the request is not tried elsewhere"


async def test_synthesize_watchdog(tts_chain: tuple[FallbackTTS, PrimaryTTS, StandbyTTS]) -> None:
    chain, primary, _ = tts_chain
    primary.trouble.mute = True
    synthesis = await within(chain.synthesize("ok", format="pcm_16000"))
    assert read(synthesis.audio) == "ok" and chain.active.name == "standby"


# --- per-call options and capabilities ---------------------------------------------------------------------------


async def test_common_options_go_to_the_providers_that_have_them() -> None:
    chain = FallbackSTT([PrimarySTT(), ScriptedSTT(script="hello")], **FAST)
    chain.stream(format="pcm_16000", language="fr", interim_results=False)
    with pytest.raises(ConfigError, match="'ms_per_word' for a fallback chain") as caught:
        chain.stream(format="pcm_16000", ms_per_word=200)
    assert caught.value.allowed and "language" in caught.value.allowed
    with pytest.raises(UnsupportedFeature, match="no provider of the fallback chain has the option 'model'"):
        await chain.transcribe(PCMAudio(speak("ok"), RATE), model="nova")
    with pytest.raises(ConfigError, match="language"):  # the run STT refuses "de" before any request goes out
        chain.stream(format="pcm_16000", language="de")
    with pytest.raises(AudioFormatError, match="raw audio"):
        chain.stream(format="wav")
    await chain.aclose()


async def test_the_chain_can_do_what_every_provider_can_and_its_events_say_so() -> None:
    chain = FallbackSTT([PrimarySTT(), PlainStandbySTT()], **FAST)
    assert chain.capabilities == STTCapabilities(flush=True)
    async with chain.stream(format="pcm_16000") as stream:
        await send(stream, speak(FIRST))
        await stream.end()
        events: list[Any] = await within(stream.collect())
    assert [type(event).__name__ for event in events] == ["Ready", "Transcript", "StreamEnded"]
    assert events[1] == Transcript(FIRST, True, 0.0, events[1].end_s, ())
    await chain.aclose()


def test_a_chain_needs_providers() -> None:
    with pytest.raises(ConfigError, match="non-empty list of STT providers"):
        FallbackSTT([])
    with pytest.raises(ConfigError, match="list of TTS providers"):
        FallbackTTS([RunSTT()])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="no_output_timeout_s"):
        FallbackSTT([RunSTT()], no_output_timeout_s=0)


# --- STT streams -------------------------------------------------------------------------------------------------


async def test_a_stream_moves_mid_way_and_no_word_is_lost_or_doubled(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, _ = stt_chain
    first, pause, second = speak(FIRST), silence(0.3), speak(SECOND)
    breaks_at = (len(first) + len(pause) + len(second) // 2) / 2 / RATE
    primary.trouble.break_after_s = breaks_at  # in the middle of the second utterance
    async with chain.stream(format="pcm_16000") as stream:
        assert stream.active == "primary"
        await send(stream, first)
        await within(stream.flush())
        await send(stream, pause + second)
        await stream.end()
        events: list[Any] = await within(stream.collect())
        assert stream.active == "standby"
    texts = [final.text for final in finals(events)]
    assert texts == [FIRST, SECOND]
    [switch] = switches(events)
    first_end = finals(events)[0].end_s
    assert first_end is not None
    assert switch.provider == "standby" and switch.previous == "primary" and "connection dropped" in switch.reason
    assert switch.time_s == pytest.approx(first_end) and switch.lost_s == 0
    assert switch.replayed_s == pytest.approx(breaks_at - first_end, abs=0.09)
    expected = Reader()
    expected.feed(first + pause + second)
    heard = [word for final in finals(events) for word in final.words]
    spoken = expected.take()
    assert [word.text for word in heard] == [word.text for word in spoken]
    times = [time for word in heard for time in (word.start_s, word.end_s)]
    assert times == pytest.approx([time for word in spoken for time in (word.start_s, word.end_s)]), "one timeline"
    assert isinstance(events[0], Ready) and isinstance(events[-1], StreamEnded)
    assert events.index(switch) < events.index(finals(events)[1])


async def test_a_drop_before_any_final_replays_from_the_start(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, _ = stt_chain
    primary.trouble.break_after_s = 0.5
    async with chain.stream(format="pcm_16000") as stream:
        await send(stream, speak(FIRST + " " + SECOND))
        await stream.end()
        events: list[Any] = await within(stream.collect())
    assert " ".join(final.text for final in finals(events)) == f"{FIRST} {SECOND}"
    assert switches(events)[0].time_s == 0.0


async def test_a_flush_waiting_when_the_provider_fails_completes_on_the_standby(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, _ = stt_chain
    primary.trouble.fail_flush = True
    async with chain.stream(format="pcm_16000") as stream:
        await send(stream, speak(FIRST))
        flushed = await within(stream.flush())
        await send(stream, silence(0.2) + speak("ok"))
        second = await within(stream.flush())
        await stream.end()
        events: list[Any] = await within(stream.collect())
    assert (flushed.flush_id, second.flush_id) == (1, 2)
    assert [event for event in events if isinstance(event, Flushed)] == [flushed, second]
    assert [final.text for final in finals(events)] == [FIRST, "ok"]
    assert events.index(finals(events)[0]) < events.index(flushed)


async def test_a_silent_provider_is_left_after_the_watchdog(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, _ = stt_chain
    primary.trouble.mute = True
    async with chain.stream(format="pcm_16000") as stream:
        await send(stream, speak(FIRST))
        await within(stream.flush())
        await stream.end()
        events: list[Any] = await within(stream.collect())
    [switch] = switches(events)
    assert "answered nothing for 0.3 s" in switch.reason
    assert [final.text for final in finals(events)] == [FIRST]


async def test_silence_is_not_a_reason_to_move(stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT]) -> None:
    chain, _, standby = stt_chain
    async with chain.stream(format="pcm_16000") as stream:
        for _ in range(6):  # 0.6 s of silence in real time: the provider rightly says nothing
            await stream.send_audio(silence(0.1))
            await asyncio.sleep(0.1)
        await send(stream, speak("ok"))
        await stream.end()
        events: list[Any] = await within(stream.collect())
    assert not switches(events) and standby.streams == 0
    assert [final.text for final in finals(events)] == ["ok"]


async def test_an_error_about_the_request_fails_the_stream(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, standby = stt_chain
    primary.trouble.break_after_s = 0.2
    primary.trouble.drop = InvalidRequest("unsupported language", provider="primary", code=400)
    async with chain.stream(format="pcm_16000") as stream:
        await send(stream, speak(FIRST))
        with pytest.raises(InvalidRequest):
            await within(stream.collect())
    assert standby.streams == 0


async def test_a_stream_fails_when_every_provider_failed(
    stt_chain: tuple[FallbackSTT, PrimarySTT, StandbySTT],
) -> None:
    chain, primary, standby = stt_chain
    primary.trouble.break_after_s = 0.2
    standby.trouble.error = AuthenticationError("bad key", provider="standby", code=401)
    async with chain.stream(format="pcm_16000") as stream:
        await send(stream, speak(FIRST))
        with pytest.raises(AllProvidersFailed) as caught:
            await within(stream.collect())
    assert [name for name, _ in caught.value.failures] == ["primary", "standby"]
    standby.trouble.error = None
    primary.trouble.error = TransportError("connection refused", provider="primary")
    async with chain.stream(format="pcm_16000") as stream:  # opening moves on too
        assert stream.active == "standby"


async def test_the_primary_comes_back_after_a_probe_and_streams_stay_where_they_are() -> None:
    primary, standby = PrimarySTT(), StandbySTT()
    chain = FallbackSTT([primary, standby], no_output_timeout_s=0.3, probe_interval_s=0.05)
    primary.trouble.error = TransportError("connection refused", provider="primary")
    async with chain.stream(format="pcm_16000") as stream:
        assert stream.active == "standby" and chain.active is standby
        primary.trouble.error = None
        for _ in range(100):
            if chain.active.name == "primary":
                break
            await asyncio.sleep(0.01)
        assert chain.active.name == "primary", "the probe did not bring the primary back"
        await send(stream, speak("ok"))
        await stream.end()
        events: list[Any] = await within(stream.collect())
        assert stream.active == "standby" and [final.text for final in finals(events)] == ["ok"]
    assert (await chain.transcribe(PCMAudio(speak("ok"), RATE))).text == "ok"
    assert primary.trouble.calls >= 2  # a probe, then the request
    await chain.aclose()


async def test_closing_the_chain_stops_its_probes() -> None:
    primary, standby = PrimarySTT(), StandbySTT()
    chain = FallbackSTT([primary, standby], no_output_timeout_s=0.3, probe_interval_s=0.05)
    before = asyncio.all_tasks()
    primary.trouble.error = TransportError("connection refused", provider="primary")
    await chain.transcribe(PCMAudio(speak("ok"), RATE))
    assert asyncio.all_tasks() - before, "a probe should be watching the primary"
    await asyncio.sleep(0.12)
    probed = primary.trouble.calls
    await chain.aclose()
    assert not {task for task in asyncio.all_tasks() - before if not task.done()}
    await asyncio.sleep(0.12)
    assert primary.trouble.calls == probed > 1


# --- TTS streams -------------------------------------------------------------------------------------------------


async def test_tts_stream_moves_before_the_first_audio_and_says_everything_once(
    tts_chain: tuple[FallbackTTS, PrimaryTTS, StandbyTTS],
) -> None:
    chain, primary, _ = tts_chain
    primary.trouble.mute = True
    async with chain.stream(format="pcm_16000") as stream:
        await stream.send_text("hello wor")
        await stream.send_text("ld again")
        flushed = await within(stream.flush())
        await stream.send_text(" and then")
        await stream.end()
        events: list[Any] = await within(stream.collect())
    [switch] = switches(events)
    assert switch.resent_text == "hello world again" and switch.time_s == 0.0
    assert read(pcm_of(events)) == "hello world again and then"
    assert flushed.flush_id == 1 and read(pcm_of(events[: events.index(flushed)])) == "hello world again"


async def test_tts_stream_moves_mid_utterance_without_repeating_delivered_words(
    tts_chain: tuple[FallbackTTS, PrimaryTTS, StandbyTTS],
) -> None:
    chain, primary, _ = tts_chain
    text = "hello world again and then some"
    _, timings = zip(*(lambda s: [s.speak(w) for w in text.split()])(Speaker()), strict=True)
    cut_s = (timings[2].start_s + timings[2].end_s) / 2  # in the middle of "again"
    primary.trouble.break_after_s = cut_s
    async with chain.stream(format="pcm_16000") as stream:
        await stream.send_text(text)
        await stream.end()
        events: list[Any] = await within(stream.collect())
    [switch] = switches(events)
    assert switch.resent_text == "again and then some" and switch.time_s == pytest.approx(cut_s, abs=1e-3)
    pcm = pcm_of(events)
    assert read(pcm) == text, "the part of 'again' already delivered runs on into the standby's 'again'"
    whole = len(speak(text)) / 2 / RATE
    assert len(pcm) / 2 / RATE == pytest.approx(whole + (cut_s - timings[2].start_s), abs=1e-3)
    words = [event for event in events if isinstance(event, WordTiming)]
    assert [word.text for word in words] == text.split()
    assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(words)), "one timeline"
    assert words[-1].end_s == pytest.approx(len(pcm) / 2 / RATE, abs=1e-3)


async def test_tts_without_word_timings_says_the_whole_utterance_again() -> None:
    primary, standby = UntimedTTS(), StandbyTTS()
    chain = FallbackTTS([primary, standby], **FAST)
    assert not chain.capabilities.word_timestamps
    primary.trouble.break_after_s = 0.3
    async with chain.stream(format="pcm_16000") as stream:
        await stream.send_text("hello world again ")
        await stream.end()
        events: list[Any] = await within(stream.collect())
    assert switches(events)[0].resent_text == "hello world again"
    assert read(pcm_of(events)).endswith("hello world again")
    assert not [event for event in events if isinstance(event, WordTiming)]
    await chain.aclose()


async def test_tts_flush_waiting_when_the_provider_fails_completes_on_the_standby(
    tts_chain: tuple[FallbackTTS, PrimaryTTS, StandbyTTS],
) -> None:
    chain, primary, _ = tts_chain
    primary.trouble.fail_flush = True
    async with chain.stream(format=AudioFormat("wav", RATE)) as stream:
        await stream.send_text("hello world")
        flushed = await within(stream.flush())
        await stream.send_text(" again")
        await stream.end()
        events: list[Any] = await within(stream.collect())
    assert flushed.flush_id == 1
    audio = decode(pcm_of(events))
    assert read(audio.data) == "hello world again" and audio.sample_rate == RATE


# --- through a real network backend: the Gradium front on 127.0.0.1 ------------------------------------------------


async def test_gradium_dropping_mid_stream_moves_to_the_standby_with_nothing_lost() -> None:
    front = make_app(StandbySTT(), None, api_keys=[KEY], faults=Faults(drop_after=30))
    async with LiveServer(front) as live:
        gradium = GradiumSTT(
            api_key=KEY, base_url=live.url + "/api", turn_detection=False, reliability={"retries": 0, "reconnects": 0}
        )
        chain = FallbackSTT([gradium, StandbySTT()], no_output_timeout_s=5.0, probe_interval_s=60.0)
        async with chain.stream(format="pcm_16000") as stream:
            await send(stream, speak(FIRST), 2560)
            await within(stream.flush())
            await send(stream, silence(0.3) + speak(SECOND), 2560)
            await stream.end()
            events: list[Any] = await within(stream.collect())
        await chain.aclose()
    [switch] = switches(events)
    assert switch.previous == "gradium" and switch.reason.startswith("gradium: ")
    assert " ".join(final.text for final in finals(events)) == f"{FIRST} {SECOND}"
    assert finals(events)[0].text == FIRST and events.index(finals(events)[0]) < events.index(switch)


async def test_gradium_with_a_revoked_key_moves_to_the_standby() -> None:
    revoked = Faults(reject_setup=1008, error_message="API key is revoked")
    front = make_app(None, ScriptedTTS(), api_keys=[KEY], faults=revoked)
    async with LiveServer(front) as live:
        chain = FallbackTTS([GradiumTTS(api_key=KEY, base_url=live.url + "/api"), StandbyTTS()], **FAST)
        synthesis = await within(chain.synthesize("hello world", format="pcm_16000"))
        assert read(synthesis.audio) == "hello world" and chain.active.name == "standby"
        await chain.aclose()


# --- the backend contract, over chains of scripted providers -------------------------------------------------------


@pytest.fixture(scope="module")
def stt_provider(speech_sample: SpeechSample) -> Iterator[FallbackSTT]:
    scripted = [ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words) for _ in range(2)]
    chain = FallbackSTT(scripted, no_output_timeout_s=30.0)
    yield chain
    asyncio.run(chain.aclose())


@pytest.fixture(scope="module")
def tts_provider() -> Iterator[FallbackTTS]:
    chain = FallbackTTS([ScriptedTTS(), ScriptedTTS(voice="square")], no_output_timeout_s=30.0)
    yield chain
    asyncio.run(chain.aclose())


class TestFallbackSTTContract(STTContract):
    pass


class TestFallbackTTSContract(TTSContract):
    pass
