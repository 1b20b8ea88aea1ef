"""Comparison metrics: the normalizer, WER counts, where speech ends (webrtcvad and energy) and prices."""

from __future__ import annotations

import asyncio
import importlib.util
import math
from array import array

import pytest

from speechbridge.audio import AudioFormat, PCMAudio, decode, resample
from speechbridge.compare import Pricing, default_normalizer, speech_end_s, word_errors
from speechbridge.compare.metrics import get_normalizer
from speechbridge.config import Config
from speechbridge.errors import ConfigError, MissingDependency

RATE = 16000


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def tone(seconds: float, frequency: float = 220.0, amplitude: float = 8000.0) -> bytes:
    return array(
        "h", (round(amplitude * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(round(seconds * RATE)))
    ).tobytes()


@pytest.fixture(scope="module")
def speech() -> PCMAudio:
    """Local TTS speech at 16 kHz."""
    tts = Config().tts(provider="local")
    synthesis = asyncio.run(tts.synthesize("please call me back tomorrow morning", format=AudioFormat.pcm16(RATE)))
    return decode(synthesis.audio, synthesis.format)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Hello, World!", "hello world"),
        ("It's 9 o'clock.", "it's nine o'clock"),
        ("Room 42, floor 3.5", "room forty two floor three point five"),
        ("1,250 people (100%)", "one thousand two hundred fifty people one hundred percent"),
        ("2024", "two thousand twenty four"),
        ("state-of-the-art R&D", "state of the art r and d"),
        ("'quoted'   words\n", "quoted words"),
        ("\u201cSmart\u201d quotes don\u2019t matter", "smart quotes don't matter"),
    ],
)
def test_default_normalizer(text, normalized):
    assert default_normalizer(text) == normalized


def test_word_errors_counts_substitutions_deletions_insertions():
    errors = word_errors("The cat sat on the mat.", "the bat sat on mat")
    assert (errors.substitutions, errors.deletions, errors.insertions, errors.hits) == (1, 1, 0, 4)
    assert errors.reference_words == 6
    assert errors.wer == pytest.approx(2 / 6)
    assert word_errors("one two", "one two three four").insertions == 2


def test_normalization_forgives_case_punctuation_and_numbers():
    assert word_errors("Call me at 9!", "call me at nine").wer == 0.0
    assert word_errors("Call me at 9!", "call me at nine", "none").wer == pytest.approx(2 / 4)


def test_an_empty_hypothesis_deletes_every_word():
    errors = word_errors("three little words", "  ")
    assert (errors.deletions, errors.wer) == (3, 1.0)


def test_a_reference_without_words_is_an_error():
    with pytest.raises(ConfigError, match="has no words left after normalization"):
        word_errors("?!", "anything")


def test_normalizers_by_name_or_callable():
    assert get_normalizer(str.upper)("a") == "A"
    with pytest.raises(ConfigError, match=r"unknown normalizer 'fancy'.*allowed: default, whisper, none"):
        get_normalizer("fancy")


@pytest.mark.skipif(importlib.util.find_spec("whisper_normalizer") is not None, reason="whisper_normalizer installed")
def test_the_whisper_normalizer_needs_its_package():
    with pytest.raises(MissingDependency, match="whisper_normalizer"):
        get_normalizer("whisper")


@pytest.mark.parametrize("vad", ["webrtc", "energy"])
def test_speech_end_is_found_after_trailing_silence(speech, vad):
    alone = speech_end_s(speech, vad=vad)
    padded = speech_end_s(PCMAudio(silence(0.6) + speech.data + silence(1.5), RATE), vad=vad)

    assert alone is not None and padded is not None
    assert speech.duration_s - 0.8 <= alone <= speech.duration_s  # the engine leaves some silence of its own
    assert padded == pytest.approx(alone + 0.6, abs=0.031)


def test_speech_end_moves_with_the_speech():
    early = speech_end_s(PCMAudio(silence(0.3) + tone(0.6) + silence(2.0), RATE), vad="energy")
    late = speech_end_s(PCMAudio(silence(1.3) + tone(0.6) + silence(1.0), RATE), vad="energy")
    assert early == pytest.approx(0.9, abs=0.04)
    assert late == pytest.approx(1.9, abs=0.04)


def test_no_speech_and_clicks_have_no_speech_end():
    assert speech_end_s(PCMAudio(silence(1.0), RATE), vad="energy") is None
    assert speech_end_s(PCMAudio(silence(0.5) + tone(0.03) + silence(0.5), RATE), vad="energy") is None
    assert speech_end_s(PCMAudio(silence(1.0), RATE), vad="webrtc") is None


def test_webrtcvad_takes_any_rate(speech):
    audio = PCMAudio(silence(0.2) + speech.data + silence(0.5), RATE)
    native = speech_end_s(audio, vad="webrtc")
    resampled = speech_end_s(resample(audio, 22050), vad="webrtc")
    assert native is not None and resampled is not None
    assert abs(native - resampled) < 0.1


def test_unknown_vad():
    with pytest.raises(ConfigError, match=r"unknown VAD 'silero'.*allowed: auto, webrtc, energy"):
        speech_end_s(PCMAudio(silence(0.1), RATE), vad="silero")


def test_prices_come_from_the_config():
    config = Config.from_dict({"pricing": {"local": {"stt_per_minute": 0.006, "tts_per_1k_chars": 0.03}}})
    pricing = Pricing.from_config(config)
    assert pricing.stt_cost("local", 90.0) == pytest.approx(0.009)
    assert pricing.tts_cost("local", 500) == pytest.approx(0.015)
    assert pricing.stt_cost("gradium", 90.0) is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"local": {"stt_per_second": 1}}, "unknown key 'stt_per_second' in .pricing.local.*stt_per_minute"),
        ({"local": {"stt_per_minute": -1}}, "must be a price in US dollars"),
        ({"local": {"stt_per_minute": "cheap"}}, "must be a price in US dollars"),
        ({"local": 3}, "must be a table"),
    ],
)
def test_bad_prices_are_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({"pricing": table})
