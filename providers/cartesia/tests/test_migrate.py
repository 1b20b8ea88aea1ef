"""``speechbridge migrate cartesia``: a Cartesia TTS request body and STT options as config for this backend."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from speechbridge_cartesia.migrate import migrate_cartesia
from speechbridge_cartesia.protocol import GenerationRequest
from speechbridge_cartesia.stt import CartesiaSTT
from speechbridge_cartesia.tts import CartesiaTTS, output_format_for

from speechbridge import cli, plugins
from speechbridge.audio import AudioFormat
from speechbridge.config import Config
from speechbridge.errors import ConfigError
from speechbridge.migrate import Migration, read_options

VOICE = "a0e99841-438c-4a64-b679-ae501e7d6091"
REQUEST = {
    "model_id": "sonic-3",
    "transcript": "Thanks for calling.",
    "voice": {"mode": "id", "id": VOICE},
    "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 44100},
    "language": "en",
    "generation_config": {"speed": 1.1, "volume": 1.5, "emotion": "calm"},
    "add_timestamps": True,
    "max_buffer_delay_ms": 500,
}
STT = {
    "model": "ink-whisper",
    "language": "en",
    "encoding": "pcm_s16le",
    "sample_rate": 16000,
    "min_volume": 0.15,
    "max_silence_duration_secs": 0.8,
}


def unmapped(migration: Migration) -> dict[str, Any]:
    return {each.field: each.value for each in migration.unmapped}


def reasons(migration: Migration) -> dict[str, str]:
    return {each.field: each.reason for each in migration.unmapped}


def configured(migration: Migration) -> Config:
    return Config.from_dict(tomllib.loads(migration.to_toml()))


def test_the_migration_is_registered():
    assert plugins.get_registry().migration("cartesia") is migrate_cartesia


def test_a_tts_request_becomes_the_settings_that_send_it_again():
    migration = migrate_cartesia(REQUEST)
    assert unmapped(migration) == {"transcript": "Thanks for calling."}
    assert migration.audio == {"tts": "pcm_44100"}
    tts = configured(migration).tts(api_key="k")
    assert isinstance(tts, CartesiaTTS)
    output = output_format_for(AudioFormat.parse(migration.audio["tts"]), tts.settings, raw_only=True)
    sent = GenerationRequest(
        transcript="Thanks for calling.",
        voice_id=tts.settings.voice,
        model_id=tts.settings.model,
        output_format=output,
        language=tts.settings.language,
        add_timestamps=tts.settings.word_timestamps,
        max_buffer_delay_ms=tts.settings.max_buffer_delay_ms,
        generation_config=tts.settings.generation_config(),
    ).to_json()
    assert sent == REQUEST
    assert tomllib.loads(migration.to_toml())["providers"] == {"cartesia": {"api_key_env": "CARTESIA_API_KEY"}}


def test_add_timestamps_left_out_is_written_as_cartesia_s_default():
    migration = migrate_cartesia({"model_id": "sonic-3", "voice": VOICE})
    assert migration.config["tts"] == {
        "provider": "cartesia",
        "model": "sonic-3",
        "voice": VOICE,
        "word_timestamps": False,
    }
    assert "word_timestamps = false" in migration.notes[0]
    assert migration.audio == {}


@pytest.mark.parametrize(
    "voice",
    [VOICE, {"id": VOICE}, {"mode": "id", "id": VOICE}],
)
def test_every_voice_spelling_names_the_voice(voice: Any):
    assert migrate_cartesia({"voice": voice}).config["tts"]["voice"] == VOICE
    assert migrate_cartesia({"voice_id": VOICE}).config["tts"]["voice"] == VOICE


@pytest.mark.parametrize(
    ("output_format", "audio"),
    [
        ({"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}, "pcm_24000"),
        ({"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}, "f32_44100"),
        ({"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}, "mulaw_8000"),
        ({"container": "raw", "encoding": "pcm_alaw", "sample_rate": 8000}, "alaw_8000"),
        ({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 16000}, "wav_16000"),
        ({"container": "mp3", "bit_rate": 128000, "sample_rate": 44100}, "mp3_44100"),
    ],
)
def test_output_format_becomes_the_format_asked_for(output_format: dict[str, Any], audio: str):
    migration = migrate_cartesia({"model_id": "sonic-3", "output_format": output_format})
    assert migration.unmapped == ()
    assert migration.audio == {"tts": audio}
    settings = configured(migration).tts(api_key="k").settings
    asked = output_format_for(AudioFormat.parse(audio), settings, raw_only=False).to_json()
    assert asked == {"bit_rate": 128000, **output_format} if output_format["container"] == "mp3" else output_format


def test_per_request_fields_are_listed_with_the_call_that_replaces_them():
    message = {**REQUEST, "context_id": "call-42", "continue": True, "flush": True}
    why = reasons(migrate_cartesia(message))
    assert set(why) == {"transcript", "context_id", "continue", "flush"}
    assert "tts.synthesize(text)" in why["transcript"] and "stream.send_text(text)" in why["transcript"]
    assert "fresh context_id" in why["context_id"] and "multiplex" in why["context_id"]
    assert "stream.end()" in why["continue"] and "stream.flush()" in why["flush"]


def test_what_has_no_equivalent_is_listed_with_the_reason():
    options = {
        "model_id": "sonic-3",
        "voice": {"mode": "id", "id": VOICE, "__experimental_controls": {"speed": "fast"}},
        "generation_config": {"speed": 1.0, "pitch": 2},
        "add_phoneme_timestamps": True,
        "pronunciation_dict_id": "dict-1",
        "speed": "fast",
        "save": True,
        "stream": False,
        "made_up": 1,
    }
    migration = migrate_cartesia(options)
    assert unmapped(migration) == {
        "voice.__experimental_controls": {"speed": "fast"},
        "generation_config.pitch": 2,
        "add_phoneme_timestamps": True,
        "pronunciation_dict_id": "dict-1",
        "speed": "fast",
        "save": True,
        "stream": False,
        "made_up": 1,
    }
    why = reasons(migration)
    assert "generation_config speed and emotion" in why["voice.__experimental_controls"]
    assert "accepted: speed, volume, emotion" in why["generation_config.pitch"]
    assert "WordTiming carries words" in why["add_phoneme_timestamps"]
    assert "generation_config.speed, 0.6 to 1.5" in why["speed"]
    assert why["made_up"] == "not a Cartesia TTS request field this migration knows"
    assert migration.config["tts"]["speed"] == 1.0 and migration.config["tts"]["voice"] == VOICE


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"model_id": "Sonic 3"}, "model_id", "model='Sonic 3' is not accepted"),
        ({"voice": {"mode": "embedding", "embedding": [0.1]}}, "voice", "'embedding' voices are not offered"),
        ({"voice": ""}, "voice", "voice must be a non-empty string"),
        ({"voice": {"id": 7}}, "voice", "voice must be a non-empty string"),
        ({"voice": VOICE, "language": "en-US"}, "language", "language='en-US' is not accepted"),
        ({"voice": VOICE, "generation_config": {"speed": 2.0}}, "generation_config.speed", "accepted: 0.6 to 1.5"),
        ({"voice": VOICE, "generation_config": {"volume": "loud"}}, "generation_config.volume", "must be a number"),
        ({"voice": VOICE, "generation_config": "calm"}, "generation_config", "generation_config is an object"),
        ({"voice": VOICE, "max_buffer_delay_ms": 9000}, "max_buffer_delay_ms", "accepted: 0 to 5000"),
        ({"voice": VOICE, "add_timestamps": "yes"}, "add_timestamps", "add_timestamps must be true or false"),
        ({"output_format": {"container": "ogg", "sample_rate": 48000}}, "output_format", "container='ogg'"),
        (
            {"output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 11025}},
            "output_format",
            "11025",
        ),
    ],
)
def test_refused_tts_values_are_listed_not_written(options: dict[str, Any], field: str, reason: str):
    migration = migrate_cartesia(options)
    assert reason in reasons(migration)[field]
    written = {"model_id": "model", "add_timestamps": "word_timestamps"}.get(field, field.split(".")[-1])
    assert written not in migration.config["tts"]
    configured(migration).tts(api_key="k")


def test_a_two_letter_locale_is_the_language():
    assert migrate_cartesia({"voice": VOICE, "locale": "fr"}).config["tts"]["language"] == "fr"
    both = migrate_cartesia({"voice": VOICE, "language": "de", "locale": "fr"})
    assert both.config["tts"]["language"] == "de" and "never both" in reasons(both)["locale"]
    assert (
        "language='en-GB' is not accepted" in reasons(migrate_cartesia({"voice": VOICE, "locale": "en-GB"}))["locale"]
    )


def test_what_a_format_does_not_keep_is_listed():
    wav = migrate_cartesia({"output_format": {"container": "wav", "encoding": "pcm_mulaw", "sample_rate": 8000}})
    assert wav.audio == {"tts": "wav_8000"}
    assert "ask for raw mulaw_8000 instead" in reasons(wav)["output_format.encoding"]
    mp3 = migrate_cartesia({"output_format": {"container": "mp3", "bit_rate": 64000, "sample_rate": 22050}})
    assert mp3.audio == {"tts": "mp3_22050"}
    assert "128000 bit/s" in reasons(mp3)["output_format.bit_rate"]


def test_stt_options_become_the_stt_settings_of_this_backend():
    migration = migrate_cartesia({**STT, "timestamp_granularities": ["word"]})
    assert migration.unmapped == ()
    assert migration.audio == {"stt": "pcm_16000"}
    stt = configured(migration).stt(api_key="k")
    assert isinstance(stt, CartesiaSTT)
    assert stt.settings.stream_query() == {
        "model": "ink-whisper",
        "language": "en",
        "min_volume": "0.15",
        "max_silence_duration_secs": "0.8",
    }
    assert stt.settings.word_timestamps is True
    assert migrate_cartesia({"timestamp_granularities": []}).config["stt"]["word_timestamps"] is False


def test_a_websocket_url_is_read_as_stt_options(tmp_path: Path):
    url = tmp_path / "url.txt"
    url.write_text(
        "wss://api.cartesia.ai/stt/websocket?model=ink-whisper&language=fr&encoding=pcm_mulaw&sample_rate=8000"
        "&min_volume=0.1&max_silence_duration_secs=1.5&cartesia_version=2025-04-16"
    )
    migration = migrate_cartesia(read_options(url))
    assert migration.unmapped == ()
    assert migration.audio == {"stt": "mulaw_8000"}
    assert migration.config["stt"] == {
        "provider": "cartesia",
        "model": "ink-whisper",
        "language": "fr",
        "min_volume": 0.1,
        "max_silence_duration_secs": 1.5,
    }
    assert migration.config["providers.cartesia"] == {"api_key_env": "CARTESIA_API_KEY", "version": "2025-04-16"}
    assert configured(migration).stt(api_key="k").settings.version == "2025-04-16"


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"model": "ink-2"}, "model", "model='ink-2' is not accepted"),
        ({"language": "en-US"}, "language", "language='en-US' is not accepted"),
        ({"min_volume": 2}, "min_volume", "accepted: 0.0 to 1.0"),
        ({"max_silence_duration_secs": "long"}, "max_silence_duration_secs", "must be a number"),
        ({"turn_end_threshold": 0.2}, "turn_end_threshold", "ink-2 turn detection"),
        ({"keyterm": ["Gradium"]}, "keyterm", "keyterm prompting is not sent"),
        ({"timestamp_granularities": ["segment"]}, "timestamp_granularities", "takes 'word'"),
        ({"encoding": "pcm_s32le", "sample_rate": 16000}, "encoding", "convert the audio to 16-bit PCM"),
        ({"encoding": "pcm_s16le"}, "encoding", "Cartesia needs sample_rate with encoding=pcm_s16le"),
        ({"sample_rate": 16000}, "sample_rate", "sample_rate goes with encoding"),
        ({"encoding": "pcm_s16le", "sample_rate": "fast"}, "sample_rate", "sample_rate must be a whole number"),
        ({"encoding": "pcm_s16le", "sample_rate": 100}, "sample_rate", "sample rate 100 is not accepted"),
        ({"cartesia_version": "latest"}, "cartesia_version", "version='latest' is not accepted"),
        ({"api_key": "sk-live"}, "api_key", "keys never go in config"),
        ({"made_up": 1}, "made_up", "not a Cartesia STT field this migration knows"),
    ],
)
def test_refused_stt_values_are_listed_not_written(options: dict[str, Any], field: str, reason: str):
    migration = migrate_cartesia(options)
    assert reason in reasons(migration)[field]
    assert field not in migration.config["stt"] and "stt" not in migration.audio
    configured(migration).stt(api_key="k")


def test_stt_and_tts_together():
    migration = migrate_cartesia({"stt": {**STT, "language": "de"}, "tts": REQUEST})
    config = configured(migration)
    assert config.stt(api_key="k").settings.language == "de"
    assert config.tts(api_key="k").settings.voice == VOICE
    assert migration.audio == {"stt": "pcm_16000", "tts": "pcm_44100"}


def test_a_flat_object_with_a_sonic_model_is_a_tts_request():
    assert migrate_cartesia({"model": "sonic-3"}).config["tts"]["model"] == "sonic-3"
    assert "stt" not in migrate_cartesia({"model": "sonic-3"}).config


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"stt": {}, "ttts": {}}, r"unknown keys \['ttts'\] next to stt/tts"),
        ({"tts": "model_id=sonic-3"}, r"tts must be an object of Cartesia TTS options"),
        (["model_id"], r"Cartesia options are an object of field names, not list"),
    ],
)
def test_malformed_options_are_a_config_error(options: Any, error: str):
    with pytest.raises(ConfigError, match=error):
        migrate_cartesia(options)


def gradium_tables(migration: Migration) -> dict[str, Any]:
    note = next(note for note in migration.notes if note.startswith("To switch this code to Gradium"))
    return tomllib.loads(note.split("\n\n", 1)[1])


def test_the_gradium_tables_make_gradium_providers():
    pytest.importorskip("speechbridge_gradium")
    migration = migrate_cartesia({"stt": STT, "tts": REQUEST})
    tables = gradium_tables(migration)
    assert tables == {
        "stt": {"provider": "gradium", "language": "en"},
        "tts": {"provider": "gradium"},
        "providers": {"gradium": {"api_key_env": "GRADIUM_API_KEY"}},
    }
    note = migration.notes[-1]
    assert "semantic VAD" in note and "speed, volume, emotion, max_buffer_delay_ms: no Gradium counterpart" in note
    config = Config.from_dict({"stt": tables["stt"], "tts": tables["tts"]})
    assert config.stt(api_key="k").name == "gradium" and config.tts(api_key="k").name == "gradium"
    from speechbridge_cartesia.migrate import GRADIUM_LANGUAGES
    from speechbridge_gradium.protocol import LANGUAGES

    assert GRADIUM_LANGUAGES == LANGUAGES


def test_a_language_gradium_does_not_recognise_is_left_out_with_a_note():
    migration = migrate_cartesia({"model": "ink-whisper", "language": "ja"})
    assert gradium_tables(migration)["stt"] == {"provider": "gradium"}
    assert "language 'ja': Gradium recognises en, fr, de, es, pt only" in migration.notes[-1]


def test_the_command_prints_the_config_and_what_did_not_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "request.json").write_text(json.dumps({**REQUEST, "context_id": "c1"}))
    assert cli.main(["migrate", "cartesia", str(tmp_path / "request.json")]) == 0
    out, err = capsys.readouterr()
    assert tomllib.loads(out)["tts"]["voice"] == VOICE
    assert "# declare the tts audio: pcm_44100" in out
    assert err.splitlines() == [
        'not migrated: transcript = "Thanks for calling.": the text itself: pass it to tts.synthesize(text) or '
        "stream.send_text(text)",
        'not migrated: context_id = "c1": each tts.stream() is a context with a fresh context_id; multiplex = true '
        "puts a provider's streams on one socket",
    ]
    assert cli.main(["migrate", "cartesia", str(tmp_path / "request.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["audio"] == {"tts": "pcm_44100"} and [each["field"] for each in data["unmapped"]] == [
        "transcript",
        "context_id",
    ]
