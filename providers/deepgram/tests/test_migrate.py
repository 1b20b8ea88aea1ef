"""``speechbridge migrate deepgram``: Deepgram listen and speak options as config for this backend (and Gradium)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from speechbridge_deepgram.migrate import migrate_deepgram
from speechbridge_deepgram.stt import DeepgramSTT
from speechbridge_deepgram.tts import DeepgramTTS

from speechbridge import plugins
from speechbridge.config import Config
from speechbridge.errors import ConfigError
from speechbridge.migrate import Migration

LIVE = {
    "model": "nova-3",
    "language": "en-US",
    "encoding": "linear16",
    "sample_rate": 16000,
    "channels": 1,
    "interim_results": True,
    "endpointing": 300,
    "utterance_end_ms": 1000,
    "smart_format": True,
    "keyterm": ["Gradium", "speechbridge"],
}


def unmapped(migration: Migration) -> dict[str, Any]:
    return {each.field: each.value for each in migration.unmapped}


def reasons(migration: Migration) -> dict[str, str]:
    return {each.field: each.reason for each in migration.unmapped}


def configured(migration: Migration) -> Config:
    return Config.from_dict(tomllib.loads(migration.to_toml()))


def test_the_migration_is_registered():
    assert plugins.get_registry().migration("deepgram") is migrate_deepgram


def test_live_options_become_the_stt_settings_of_this_backend():
    migration = migrate_deepgram(LIVE)
    assert migration.unmapped == ()
    assert migration.audio == {"stt": "pcm_16000"}
    stt = configured(migration).stt(api_key="k")
    assert isinstance(stt, DeepgramSTT)
    query = dict(stt.settings.stream_query())
    assert query == {
        "model": "nova-3",
        "language": "en-US",
        "smart_format": "true",
        "keyterm": "speechbridge",
        "interim_results": "true",
        "endpointing": "300",
        "vad_events": "false",
        "utterance_end_ms": "1000",
    }
    assert [value for name, value in stt.settings.stream_query() if name == "keyterm"] == ["Gradium", "speechbridge"]
    assert tomllib.loads(migration.to_toml())["providers"] == {"deepgram": {"api_key_env": "DEEPGRAM_API_KEY"}}


def test_deepgram_live_defaults_are_written_out_where_this_backend_differs():
    settings = configured(migrate_deepgram({"model": "nova-3", "encoding": "mulaw", "sample_rate": 8000})).stt(
        api_key="k"
    )
    assert (settings.settings.interim_results, settings.settings.vad_events, settings.settings.endpointing) == (
        False,
        False,
        10,
    )
    prerecorded = migrate_deepgram({"model": "nova-3", "smart_format": True})
    assert prerecorded.config["stt"] == {"provider": "deepgram", "model": "nova-3", "smart_format": True}
    assert prerecorded.audio == {}


def test_sdk_and_query_string_spellings_are_read():
    migration = migrate_deepgram(
        {"interim_results": "true", "endpointing": "false", "vad_events": "true", "keyterms": "Gradium"}
    )
    assert migration.config["stt"] == {
        "provider": "deepgram",
        "interim_results": True,
        "endpointing": False,
        "vad_events": True,
        "keyterm": ["Gradium"],
    }


def test_what_has_no_equivalent_is_listed_with_the_reason():
    options = {
        "model": "nova-3",
        "diarize": True,
        "multichannel": True,
        "channels": 2,
        "numerals": True,
        "redact": ["pci", "ssn"],
        "keywords": ["Gradium:2"],
        "callback": "https://example.com/hook",
        "summarize": "v2",
        "paragraphs": True,
        "made_up": 1,
    }
    migration = migrate_deepgram(options)
    assert unmapped(migration) == {name: value for name, value in options.items() if name != "model"}
    why = reasons(migration)
    assert "speaker labels" in why["diarize"]
    assert "one stream per channel" in why["multichannel"] and why["channels"] == why["multichannel"]
    assert "smart_format" in why["numerals"]
    assert "keyterm" in why["keywords"]
    assert "/v1/read" in why["summarize"]
    assert why["made_up"] == "not a Deepgram listen option this migration knows"
    assert migration.config["stt"] == {"provider": "deepgram", "model": "nova-3"}


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"endpointing": 5}, "endpointing", "endpointing is milliseconds of silence from 10 to 10000"),
        ({"utterance_end_ms": 200}, "utterance_end_ms", "utterance_end_ms is milliseconds from 1000 to 5000"),
        ({"interim_results": False, "utterance_end_ms": 1000}, "utterance_end_ms", "needs interim_results=True"),
        ({"language": "English"}, "language", "language must be a BCP-47 code"),
        ({"smart_format": "yes"}, "smart_format", "smart_format must be true or false"),
        ({"encoding": "linear16"}, "encoding", "Deepgram needs sample_rate with encoding=linear16"),
        ({"encoding": "opus", "sample_rate": 48000}, "encoding", "decode it to PCM first"),
        ({"sample_rate": 16000}, "sample_rate", "sample_rate goes with encoding"),
        ({"encoding": "mulaw", "sample_rate": "fast"}, "sample_rate", "sample_rate must be a whole number"),
    ],
)
def test_refused_values_are_listed_not_written(options: dict[str, Any], field: str, reason: str):
    migration = migrate_deepgram(options)
    assert reason in reasons(migration)[field]
    assert field not in migration.config["stt"]
    configured(migration).stt(api_key="k")


def test_telephony_mulaw_is_declared_as_it_is():
    migration = migrate_deepgram({"model": "nova-3", "encoding": "mulaw", "sample_rate": 8000})
    assert migration.audio == {"stt": "mulaw_8000"}
    assert "# declare the stt audio: mulaw_8000, in stt.stream(format=...)" in migration.to_toml()


@pytest.mark.parametrize(
    ("options", "audio"),
    [
        ({"model": "aura-2-thalia-en"}, "wav_24000"),
        ({"model": "aura-2-thalia-en", "encoding": "linear16", "container": "none"}, "pcm_24000"),
        ({"model": "aura-2-thalia-en", "encoding": "mulaw", "sample_rate": 8000, "container": "none"}, "mulaw_8000"),
        ({"model": "aura-2-thalia-en", "encoding": "mp3"}, "mp3_22050"),
        ({"model": "aura-2-thalia-en", "encoding": "linear16", "sample_rate": "16000"}, "wav_16000"),
    ],
)
def test_speak_options_become_the_tts_voice_and_format(options: dict[str, Any], audio: str):
    migration = migrate_deepgram({**options, "speed": 1.2})
    assert migration.unmapped == ()
    assert migration.audio == {"tts": audio}
    tts = configured(migration).tts(api_key="k")
    assert isinstance(tts, DeepgramTTS)
    assert (tts.settings.voice, tts.settings.speed) == ("aura-2-thalia-en", 1.2)


def test_speak_options_without_equivalent_or_refused():
    migration = migrate_deepgram(
        {"model": "aura-2-thalia-en", "encoding": "mulaw", "sample_rate": 24000, "bit_rate": 48000, "tag": "x"}
    )
    why = reasons(migration)
    assert "sample_rate=24000 is not accepted for mulaw (accepted: 8000, 16000)" in why["sample_rate"]
    assert "bitrate" in why["bit_rate"] and "usage tags" in why["tag"]
    assert "tts" not in migration.audio
    bad_voice = migrate_deepgram({"speak": {"model": "thalia", "speed": 9}})
    assert set(unmapped(bad_voice)) == {"model", "speed"}
    assert "not a Deepgram Aura voice" in reasons(bad_voice)["model"]


def test_listen_and_speak_together():
    migration = migrate_deepgram(
        {"listen": {"model": "nova-3", "language": "fr"}, "speak": {"model": "aura-2-agathe-fr", "encoding": "mp3"}}
    )
    config = configured(migration)
    assert config.stt(api_key="k").settings.language == "fr"
    assert config.tts(api_key="k").settings.voice == "aura-2-agathe-fr"
    assert migration.audio == {"tts": "mp3_22050"}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"listen": {}, "spaek": {}}, r"unknown keys \['spaek'\] next to listen/speak"),
        ({"listen": "model=nova-3"}, r"listen must be an object of Deepgram listen options"),
    ],
)
def test_malformed_options_are_a_config_error(options: dict[str, Any], error: str):
    with pytest.raises(ConfigError, match=error):
        migrate_deepgram(options)


def gradium_tables(migration: Migration) -> dict[str, Any]:
    note = next(note for note in migration.notes if note.startswith("To switch this code to Gradium"))
    return tomllib.loads(note.split("\n\n", 1)[1])


@pytest.mark.parametrize(("endpointing", "frames"), [(300, 7), (700, 8), (1000, 12), (2000, 24), (10_000, 48)])
def test_the_gradium_note_has_the_nearest_delay(endpointing: int, frames: int):
    tables = gradium_tables(migrate_deepgram({**LIVE, "endpointing": endpointing}))
    assert tables["stt"] == {"provider": "gradium", "language": "en", "delay_in_frames": frames}


def test_the_gradium_tables_make_gradium_providers():
    pytest.importorskip("speechbridge_gradium")
    migration = migrate_deepgram({"listen": {**LIVE, "language": "ja"}, "speak": {"model": "aura-2-thalia-en"}})
    tables = gradium_tables(migration)
    assert tables["stt"] == {"provider": "gradium", "delay_in_frames": 7}
    note = migration.notes[-1]
    assert "Gradium recognises en, fr, de, es, pt only" in note and "semantic VAD" in note
    config = Config.from_dict({"stt": tables["stt"], "tts": tables["tts"]})
    assert config.stt(api_key="k").name == "gradium" and config.tts(api_key="k").name == "gradium"
    from speechbridge_deepgram.migrate import GRADIUM_DELAYS_IN_FRAMES, GRADIUM_LANGUAGES
    from speechbridge_gradium.protocol import DELAYS_IN_FRAMES, LANGUAGES

    assert (GRADIUM_LANGUAGES, GRADIUM_DELAYS_IN_FRAMES) == (LANGUAGES, DELAYS_IN_FRAMES)
