"""speechbridge.testing: the scripted providers, the registry helper, the pytest plugin, and the contract's teeth."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, TypeVar

import pytest

from speechbridge.audio import AudioFormat, PCMAudio, decode
from speechbridge.errors import ConfigError, UnsupportedFeature
from speechbridge.events import (
    AudioChunk,
    Flushed,
    Ready,
    SpeechStarted,
    StreamEnded,
    Transcript,
    TurnEnded,
    VADUpdate,
    WordTiming,
)
from speechbridge.plugins import build_registry, plugin_manager
from speechbridge.testing import (
    ScriptedSTT,
    ScriptedTTS,
    SpeechSample,
    scripted_registry,
    word_overlap,
    words_of,
)
from speechbridge.testing.scripted import level_dbfs

RATE = 16000
T = TypeVar("T")


def tone(seconds: float, amplitude: float = 0.3) -> bytes:
    count = round(seconds * RATE)
    return struct.pack(f"<{count}h", *(round(amplitude * 32767 * math.sin(i / 5)) for i in range(count)))


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


async def stream_events(stt: ScriptedSTT, pcm: bytes, **options: Any) -> list[Any]:
    async with stt.stream(format=AudioFormat.pcm16(RATE), **options) as stream:
        await stream.send_audio(pcm)
        await stream.end()
        return await stream.collect()


def of_type(events: Sequence[object], kind: type[T]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


# --- ScriptedSTT ----------------------------------------------------------------------------------------------


async def test_each_stretch_of_voiced_audio_uncovers_the_next_words() -> None:
    stt = ScriptedSTT(script="one two three four five", ms_per_word=240)
    events = await stream_events(stt, tone(0.48) + silence(0.8) + tone(0.48) + silence(0.16))
    turns = of_type(events, TurnEnded)
    assert [turn.text for turn in turns] == ["one two"]
    finals = [event for event in of_type(events, Transcript) if event.is_final]
    assert [final.text for final in finals] == ["one two", "three four"]
    assert [(w.text, w.start_s, w.end_s) for w in finals[0].words] == [("one", 0.0, 0.24), ("two", 0.24, 0.48)]
    assert [(w.start_s, w.end_s) for w in finals[1].words] == [pytest.approx((1.28, 1.52)), pytest.approx((1.52, 1.76))]
    assert [event.time_s for event in of_type(events, SpeechStarted)] == [0.0, pytest.approx(1.28)]
    assert isinstance(events[0], Ready) and isinstance(events[-1], StreamEnded)


async def test_silence_uncovers_nothing_and_reports_inactivity() -> None:
    stt = ScriptedSTT(script="never heard")
    events = await stream_events(stt, silence(1.0))
    assert not of_type(events, Transcript) and not of_type(events, SpeechStarted)
    updates = of_type(events, VADUpdate)
    assert len(updates) == math.ceil(1.0 / 0.08)
    assert all(update.speech_prob < 0.01 for update in updates)
    inactivity = [update.inactivity_at(1.0) or 0.0 for update in updates]
    assert inactivity == sorted(inactivity) and inactivity[-1] == pytest.approx(0.5, abs=0.05)
    assert all(len(update.inactivity_prob) == 3 for update in updates)
    assert (await stt.transcribe(PCMAudio(silence(1.0), RATE))).text == ""


async def test_vad_follows_the_level_of_the_audio() -> None:
    stt = ScriptedSTT(vad_threshold_db=-30)
    loud, quiet = tone(0.08, 0.3), tone(0.08, 0.003)
    assert level_dbfs(loud) > -30 > level_dbfs(quiet)
    events = await stream_events(stt, loud + quiet)
    assert [update.speech_prob > 0.5 for update in of_type(events, VADUpdate)] == [True, False]


async def test_interims_grow_until_the_final_and_can_be_turned_off() -> None:
    stt = ScriptedSTT(script="a b c", ms_per_word=80)
    events = await stream_events(stt, tone(0.24))
    transcripts = of_type(events, Transcript)
    assert [(t.text, t.is_final) for t in transcripts] == [
        ("a", False),
        ("a b", False),
        ("a b c", False),
        ("a b c", True),
    ]
    quiet = await stream_events(stt, tone(0.24), interim_results=False)
    assert [(t.text, t.is_final) for t in of_type(quiet, Transcript)] == [("a b c", True)]


async def test_flush_finalises_a_word_heard_at_least_half_way() -> None:
    stt = ScriptedSTT(script="alpha beta gamma", ms_per_word=200, interim_results=False)
    async with stt.stream(format="pcm_16000") as stream:
        await stream.send_audio(tone(0.32))  # 1.6 words: "beta" is more than half heard
        assert await stream.flush() == Flushed(1)
        await stream.send_audio(tone(0.08))  # "gamma" is 0.4 heard, less than half
        await stream.flush()
        await stream.end()
        events = await stream.collect()
    finals = [(event.text, event.is_final) for event in of_type(events, Transcript)]
    assert finals == [("alpha beta", True)]
    assert events.index(Flushed(1)) > events.index(of_type(events, Transcript)[0])


async def test_the_script_runs_out() -> None:
    stt = ScriptedSTT(script=["hello there"], ms_per_word=100)
    assert (await stt.transcribe(PCMAudio(tone(2.0), RATE))).text == "hello there"


async def test_batch_and_stream_agree_and_repeat() -> None:
    stt = ScriptedSTT(script="the rain in spain stays mainly in the plain", ms_per_word=150)
    audio = tone(0.48) + silence(0.64) + tone(0.72)
    streamed = " ".join(t.text for t in of_type(await stream_events(stt, audio), Transcript) if t.is_final)
    batch = await stt.transcribe(PCMAudio(audio, RATE))
    assert batch.text == streamed == (await stt.transcribe(PCMAudio(audio, RATE))).text
    assert len(batch.words) == 8 and batch.is_final


async def test_for_audio_fits_the_script_to_the_voiced_time(speech_sample: SpeechSample) -> None:
    stt = ScriptedSTT.for_audio(speech_sample.audio, speech_sample.words, sample_rate=8000)
    assert stt.settings.sample_rate == 8000
    assert (await stt.transcribe(speech_sample.audio)).text == speech_sample.text
    with pytest.raises(ConfigError, match="no voiced part"):
        ScriptedSTT.for_audio(PCMAudio(silence(0.5), RATE), "words")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ms_per_word": 0}, "ms_per_word"),
        ({"sample_rate": 11025}, "allowed: 8000, 16000, 24000, 48000"),
        ({"script": 42}, "script must be text"),
        ({"interim_results": "yes"}, "interim_results must be True or False"),
        ({"language": 5}, "language must be text"),
        ({"beam_size": 2}, "allowed: script, ms_per_word"),
    ],
)
def test_stt_settings_are_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        ScriptedSTT(**options)
    assert info.value.provider == "scripted"


def test_a_common_option_scripted_stt_lacks_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature, match="scripted has no equivalent of the option 'speed'"):
        ScriptedSTT(speed=2)


# --- ScriptedTTS ----------------------------------------------------------------------------------------------


async def test_tts_timings_are_exact() -> None:
    tts = ScriptedTTS(sample_rate=16000, ms_per_char=100, gap_ms=50)
    synthesis = await tts.synthesize("ab abcd", format="pcm_16000")
    assert synthesis.words == (WordTiming("ab", 0.0, 0.2), WordTiming("abcd", 0.25, 0.65))
    assert synthesis.duration_s == pytest.approx(0.65)
    audio = decode(synthesis.audio, synthesis.format)
    assert len(audio.data) == 2 * round(0.65 * 16000)
    assert level_dbfs(audio.data[: 2 * 3200]) > -15
    assert level_dbfs(audio.data[2 * 3200 : 2 * 4000]) == -120.0
    faster = await tts.synthesize("ab abcd", format="pcm_16000", speed=2.0)
    assert faster.words[-1].end_s == pytest.approx(0.325)


async def test_tts_voices_are_waveforms() -> None:
    tts = ScriptedTTS(sample_rate=16000)
    assert [voice.id for voice in await tts.voices()] == ["sine", "square"]
    sine = await tts.synthesize("hello", format="pcm_16000")
    square = await tts.synthesize("hello", voice="square", format="pcm_16000")
    assert len(sine.audio) == len(square.audio) and sine.audio != square.audio
    assert level_dbfs(square.audio) > level_dbfs(sine.audio)
    with pytest.raises(ConfigError, match="allowed: sine, square"):
        await tts.synthesize("hello", voice="alto")


async def test_tts_stream_speaks_each_word_once_its_whitespace_arrives() -> None:
    tts = ScriptedTTS(sample_rate=16000)
    async with tts.stream(format="pcm_16000") as stream:
        await stream.send_text("hel")
        await stream.send_text("lo wor")
        await stream.send_text("ld")
        await stream.flush()
        await stream.send_text("  again")
        await stream.end()
        events = await stream.collect()
    timings = of_type(events, WordTiming)
    assert [timing.text for timing in timings] == ["hello", "world", "again"]
    assert events.index(timings[1]) < events.index(Flushed(1)) < events.index(timings[2])
    streamed = b"".join(chunk.data for chunk in of_type(events, AudioChunk))
    batch = await tts.synthesize("hello world again", format="pcm_16000")
    assert streamed == batch.audio and tuple(timings) == batch.words


async def test_tts_round_trips_through_scripted_stt() -> None:
    tts = ScriptedTTS(sample_rate=16000)
    synthesis = await tts.synthesize("testing one two three", format="pcm_16000")
    audio = decode(synthesis.audio, synthesis.format)
    heard = await ScriptedSTT.for_audio(audio, "testing one two three").transcribe(synthesis.audio, format="pcm_16000")
    assert heard.text == "testing one two three"


# --- samples, registry and plugin -------------------------------------------------------------------------------


def test_word_overlap_is_loose_and_counts_repeats() -> None:
    assert words_of("The lazy, LAZY dog's bone!") == ("the", "lazy", "lazy", "dog's", "bone")
    assert word_overlap(["the", "the", "dog"], "the dog") == pytest.approx(2 / 3)
    assert word_overlap([], "anything") == 1.0
    assert word_overlap(["cat"], "") == 0.0


def test_scripted_providers_stay_out_of_the_default_registry() -> None:
    default = build_registry(plugin_manager())
    assert "scripted" not in default.names("stt") and "scripted" not in default.names("tts")
    with_scripted = scripted_registry()
    assert with_scripted.stt("scripted") is ScriptedSTT and with_scripted.tts("scripted") is ScriptedTTS
    assert set(default.names("stt")) <= set(with_scripted.names("stt"))
    assert scripted_registry(load_entrypoints=False).names("stt") == ["scripted"]


def test_the_pytest_plugin_offers_its_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        from speechbridge.testing import ScriptedSTT, ScriptedTTS

        async def test_fixtures(scripted_stt, scripted_tts, speech_sample, speech_registry):
            assert isinstance(scripted_stt, ScriptedSTT) and isinstance(scripted_tts, ScriptedTTS)
            assert (await scripted_stt.transcribe(speech_sample.audio)).text == speech_sample.text
            assert speech_registry.stt("scripted") is ScriptedSTT
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


BROKEN_PROVIDERS = """
import attrs, pytest
from speechbridge.events import Flushed, Transcript
from speechbridge.testing import ScriptedSTT, ScriptedTTS
from speechbridge.testing.scripted import ScriptedRecognizer, ScriptedSTTStream, ScriptedTTSStream
from speechbridge.testing.contract import STTContract, TTSContract


class SilentStart(ScriptedSTTStream):
    async def _open(self):
        pass


class EagerFlush(ScriptedSTTStream):
    async def _send_flush(self, flush_id):
        self._emit(Flushed(flush_id))
        self._emit_all(self._recognizer.finish())


class Hallucinating(ScriptedRecognizer):
    def finish(self):
        events = super().finish()
        return events if any(isinstance(e, Transcript) for e in events) else [*events, Transcript("um", True)]


class HallucinatingStream(ScriptedSTTStream):
    def __init__(self, provider, format, settings):
        super().__init__(provider, format, settings)
        self._recognizer = Hallucinating(settings)


def stt_with(stream_cls, **capabilities):
    class Broken(ScriptedSTT):
        def _stream(self, format, settings):
            return stream_cls(self.name, format, settings)
    Broken.capabilities = attrs.evolve(ScriptedSTT.capabilities, **capabilities)
    return Broken


class HoldsTheLastWord(ScriptedTTSStream):
    async def _send_flush(self, flush_id):
        self._emit(Flushed(flush_id))


class BrokenTTS(ScriptedTTS):
    def _stream(self, format, settings):
        return HoldsTheLastWord(self.name, format, settings)


def provider(cls):
    @pytest.fixture
    def stt_provider(self, speech_sample):
        return cls.for_audio(speech_sample.audio, speech_sample.words)
    return stt_provider


class TestSilentStart(STTContract):
    stt_provider = provider(stt_with(SilentStart))


class TestEagerFlush(STTContract):
    stt_provider = provider(stt_with(EagerFlush))


class TestHallucinating(STTContract):
    stt_provider = provider(stt_with(HallucinatingStream))


class TestUndeclaredWords(STTContract):
    stt_provider = provider(stt_with(ScriptedSTTStream, word_timestamps=False))


class TestUndeclaredInterims(STTContract):
    stt_provider = provider(stt_with(ScriptedSTTStream, interim_results=False))


class TestHoldsTheLastWord(TTSContract):
    @pytest.fixture
    def tts_provider(self):
        return BrokenTTS()
"""


def test_the_contract_catches_broken_providers(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_broken=BROKEN_PROVIDERS)
    expected_failures = {
        "TestSilentStart::test_ready_first_stream_ended_last_then_closed",
        "TestEagerFlush::test_flush_delivers_final_text_first_and_works_twice",
        "TestHallucinating::test_silence_gives_no_text",
        "TestUndeclaredWords::test_stream_events_are_as_declared",
        "TestUndeclaredWords::test_end_drains_the_final_text",
        "TestUndeclaredInterims::test_stream_events_are_as_declared",
        "TestHoldsTheLastWord::test_flush_returns_after_the_audio_of_the_text_so_far",
    }
    selection = " or ".join(f"({name.replace('::', ' and ')})" for name in expected_failures)
    result = pytester.runpytest_inprocess("-k", selection, "-rf", "-p", "no:cacheprovider")
    failed = {line.split("::", 1)[1].split(" ")[0] for line in result.outlines if line.startswith("FAILED")}
    assert failed == expected_failures
