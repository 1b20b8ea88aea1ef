"""``speechbridge migrate elevenlabs``: ElevenLabs TTS and Scribe options as config for this backend (and Gradium)."""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from speechbridge_elevenlabs.migrate import migrate_elevenlabs
from speechbridge_elevenlabs.stt import ElevenLabsSTT
from speechbridge_elevenlabs.tts import ElevenLabsTTS

from speechbridge import cli, plugins
from speechbridge.config import Config
from speechbridge.errors import ConfigError, UnsupportedFeature
from speechbridge.migrate import Migration, read_options

VOICE = "21m00Tcm4TlvDq8ikWAM"
TTS_REQUEST = {
    "voice_id": VOICE,
    "model_id": "eleven_flash_v2_5",
    "language_code": "en",
    "output_format": "pcm_22050",
    "voice_settings": {
        "stability": 0.4,
        "similarity_boost": 0.8,
        "style": 0.1,
        "use_speaker_boost": True,
        "speed": 1.1,
    },
    "seed": 7,
    "apply_text_normalization": "on",
}
REALTIME = {
    "model_id": "scribe_v2_realtime",
    "audio_format": "pcm_16000",
    "sample_rate": 16000,
    "commit_strategy": "vad",
    "vad_silence_threshold_secs": 0.8,
    "vad_threshold": 0.5,
    "min_speech_duration_ms": 100,
    "language_code": "en",
    "include_timestamps": True,
    "keyterms": ["Gradium"],
}
BATCH = {"model_id": "scribe_v2", "language_code": "en", "tag_audio_events": True, "timestamps_granularity": "word"}


def unmapped(migration: Migration) -> dict[str, Any]:
    return {each.field: each.value for each in migration.unmapped}


def reasons(migration: Migration) -> dict[str, str]:
    return {each.field: each.reason for each in migration.unmapped}


def configured(migration: Migration) -> Config:
    return Config.from_dict(tomllib.loads(migration.to_toml()))


def test_the_migration_is_registered():
    assert plugins.get_registry().migration("elevenlabs") is migrate_elevenlabs


def test_a_tts_request_becomes_the_tts_settings_and_format():
    migration = migrate_elevenlabs(TTS_REQUEST)
    assert migration.unmapped == ()
    assert migration.audio == {"tts": "pcm_22050"}
    tts = configured(migration).tts(api_key="k")
    assert isinstance(tts, ElevenLabsTTS)
    assert (tts.settings.voice, tts.settings.language) == (VOICE, "en")
    assert tts.settings.rest_body("Hi.") == {
        "text": "Hi.",
        "model_id": "eleven_flash_v2_5",
        "language_code": "en",
        "voice_settings": TTS_REQUEST["voice_settings"],
        "seed": 7,
        "apply_text_normalization": "on",
    }
    written = tomllib.loads(migration.to_toml())
    assert written["tts"]["speed"] == 1.1 and "speed" not in written["tts"]["voice_settings"]
    assert written["providers"] == {"elevenlabs": {"api_key_env": "ELEVENLABS_API_KEY"}}
    assert "# declare the tts audio: pcm_22050, in tts.synthesize(format=...)" in migration.to_toml()


def test_elevenlabs_defaults_are_written_out_where_this_backend_differs():
    migration = migrate_elevenlabs({"voice_id": VOICE})
    assert migration.config["tts"] == {"provider": "elevenlabs", "voice": VOICE, "model": "eleven_multilingual_v2"}
    assert migration.audio == {"tts": "mp3_44100"}
    assert any("ElevenLabs' default is mp3_44100_128" in note for note in migration.notes)
    assert any("tts.stream() takes raw audio only" in note for note in migration.notes)
    assert configured(migration).tts(api_key="k").settings.model == "eleven_multilingual_v2"


@pytest.mark.parametrize(
    ("output_format", "audio", "bitrate_note"),
    [
        ("pcm_16000", "pcm_16000", None),
        ("pcm_32000", "pcm_32000", None),
        ("ulaw_8000", "mulaw_8000", None),
        ("alaw_8000", "alaw_8000", None),
        ("wav_24000", "wav_24000", None),
        ("mp3_44100_128", "mp3_44100", None),
        ("mp3_22050_32", "mp3_22050", None),
        ("mp3_44100_192", "mp3_44100", "asks ElevenLabs for mp3_44100_128: the bitrate differs"),
        ("opus_48000_64", "ogg_opus_48000", "asks ElevenLabs for pcm_48000 and encodes Opus itself"),
    ],
)
def test_output_formats_become_the_declared_format(output_format: str, audio: str, bitrate_note: str | None):
    migration = migrate_elevenlabs({"voice_id": VOICE, "model_id": "eleven_v3", "output_format": output_format})
    assert migration.audio == {"tts": audio}
    raw_only = any("tts.stream() takes raw audio only" in note for note in migration.notes)
    assert raw_only is not output_format.startswith(("pcm", "ulaw", "alaw"))
    notes = [note for note in migration.notes if note.startswith(f"output_format {output_format}")]
    assert notes == ([] if bitrate_note is None else [notes[0]])
    if bitrate_note is not None:
        assert bitrate_note in notes[0]


def test_refused_tts_values_are_listed_not_written():
    migration = migrate_elevenlabs(
        {
            "voice_id": "",
            "output_format": "pcm_11025",
            "voice_settings": {"stability": 2, "loudness": 1, "speed": 1.5, "similarity_boost": 0.5},
            "seed": -1,
            "apply_text_normalization": "maybe",
        }
    )
    why = reasons(migration)
    assert set(why) == {
        "voice_id",
        "output_format",
        "voice_settings.stability",
        "voice_settings.loudness",
        "voice_settings.speed",
        "seed",
        "apply_text_normalization",
    }
    assert "out of range (accepted: 0.0 to 1.0)" in why["voice_settings.stability"]
    assert "unknown voice_settings key 'loudness'" in why["voice_settings.loudness"]
    assert "0.7 to 1.2" in why["voice_settings.speed"]
    assert "pcm_22050" in why["output_format"] and "tts" not in migration.audio
    assert migration.config["tts.voice_settings"] == {"similarity_boost": 0.5}
    configured(migration).tts(api_key="k")


def test_what_has_no_tts_equivalent_is_listed_and_keys_are_never_echoed():
    options = {
        "voice_id": VOICE,
        "text": "Hello.",
        "previous_text": "Before.",
        "next_request_ids": ["r1"],
        "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "d", "version_id": "v"}],
        "optimize_streaming_latency": 3,
        "enable_ssml_parsing": True,
        "xi_api_key": "sk-secret",
        "made_up": 1,
    }
    migration = migrate_elevenlabs(options)
    values = unmapped(migration)
    assert set(values) == set(options) - {"voice_id"}
    assert values["xi_api_key"] == "<redacted>" and "sk-secret" not in json.dumps(migration.to_json())
    why = reasons(migration)
    assert "one tts.stream()" in why["previous_text"] and why["next_request_ids"] == why["previous_text"]
    assert "argument of speak()" in why["text"]
    assert "deprecated" in why["optimize_streaming_latency"]
    assert why["made_up"] == "not an ElevenLabs text-to-speech option this migration knows"


def test_nulls_empties_and_features_switched_off_are_not_listed():
    body = {  # the request body of ElevenLabs' API reference, as the SDK sends it
        "voice_id": VOICE,
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.5, "similarity_boost": 0.75, "style": None, "speed": 1.0},
        "pronunciation_dictionary_locators": [],
        "previous_text": None,
        "next_text": None,
        "previous_request_ids": [],
        "apply_language_text_normalization": False,
        "use_pvc_as_ivc": False,
        "output_format": "ulaw_8000",
    }
    migration = migrate_elevenlabs(body)
    assert migration.unmapped == ()
    assert migration.config["tts.voice_settings"] == {"stability": 0.5, "similarity_boost": 0.75}
    batch = migrate_elevenlabs({"model_id": "scribe_v1", "diarize": False, "webhook": False, "made_up": False})
    assert unmapped(batch) == {"made_up": False}


def test_socket_options_go_to_streams_and_are_noted():
    migration = migrate_elevenlabs(
        {
            "voice_id": VOICE,
            "model_id": "eleven_flash_v2_5",
            "output_format": "pcm_16000",
            "generation_config": {"chunk_length_schedule": [120, 160, 250], "temperature": 1},
            "auto_mode": "true",
            "inactivity_timeout": 60,
            "sync_alignment": False,
        }
    )
    assert unmapped(migration) == {"generation_config.temperature": 1}
    tts = configured(migration).tts(api_key="k")
    query = tts.settings.socket_query("pcm_16000")
    assert (query["auto_mode"], query["inactivity_timeout"], "sync_alignment" in query) == ("true", "60", False)
    assert tts.settings.chunk_length_schedule == [120, 160, 250]
    with pytest.raises(UnsupportedFeature, match="chunk_length_schedule, auto_mode, inactivity_timeout"):
        tts.settings.rest_body("Hi.")
    assert any("tts.synthesize() refuses them" in note for note in migration.notes)


def test_realtime_options_become_the_stream_settings():
    migration = migrate_elevenlabs(REALTIME)
    assert migration.unmapped == ()
    assert migration.audio == {"stt": "pcm_16000"}
    stt = configured(migration).stt(api_key="k")
    assert isinstance(stt, ElevenLabsSTT)
    assert dict(stt.settings.realtime_query("pcm_16000")) == {
        "model_id": "scribe_v2_realtime",
        "audio_format": "pcm_16000",
        "commit_strategy": "vad",
        "include_timestamps": "true",
        "language_code": "en",
        "vad_silence_threshold_secs": "0.8",
        "vad_threshold": "0.5",
        "min_speech_duration_ms": "100",
        "keyterms": "Gradium",
    }


def test_manual_commits_the_elevenlabs_default_are_written_out():
    migration = migrate_elevenlabs({"model_id": "scribe_v2_realtime", "audio_format": "ulaw_8000"})
    assert migration.config["stt"] == {
        "provider": "elevenlabs",
        "realtime_model": "scribe_v2_realtime",
        "commit_strategy": "manual",
    }
    assert migration.audio == {"stt": "mulaw_8000"}
    assert any('commit_strategy = "manual"' in note for note in migration.notes)


def test_a_realtime_url_is_read(tmp_path: Path):
    url = tmp_path / "realtime.txt"
    url.write_text(
        "wss://api.elevenlabs.io/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&audio_format=pcm_24000"
        "&commit_strategy=vad&vad_silence_threshold_secs=1.5&keyterms=Gradium&keyterms=Scribe&no_verbatim=true"
    )
    migration = migrate_elevenlabs(read_options(url))
    assert migration.unmapped == ()
    assert migration.config["stt"]["vad_silence_threshold_secs"] == 1.5
    assert migration.config["stt"]["keyterms"] == ["Gradium", "Scribe"]
    assert migration.config["stt"]["no_verbatim"] is True
    assert migration.audio == {"stt": "pcm_24000"}


def test_batch_options_become_the_transcribe_settings():
    options = {
        **BATCH,
        "file_format": "pcm_s16le_16",
        "keyterms": ["Gradium"],
        "temperature": 0.2,
        "seed": 3,
        "diarize": True,
        "num_speakers": 2,
        "timestamps_granularity": "character",
        "use_multi_channel": True,
        "webhook": True,
        "source_url": "https://example.com/call.mp3",
        "entity_redaction": "pii",
        "additional_formats": [{"format": "srt"}],
    }
    migration = migrate_elevenlabs(options)
    assert migration.audio == {"stt": "pcm_16000"}
    assert set(unmapped(migration)) == {
        "diarize",
        "num_speakers",
        "timestamps_granularity",
        "use_multi_channel",
        "webhook",
        "source_url",
        "entity_redaction",
        "additional_formats",
    }
    why = reasons(migration)
    assert "speaker labels" in why["diarize"] and why["num_speakers"].startswith("goes with diarize")
    assert "word timings only" in why["timestamps_granularity"]
    assert "download the file" in why["source_url"]
    form = configured(migration).stt(api_key="k").settings.batch_form()
    assert form == {
        "model_id": "scribe_v2",
        "language_code": "en",
        "timestamps_granularity": "word",
        "tag_audio_events": "true",
        "temperature": "0.2",
        "seed": "3",
    }


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"voice_settings": {"stability": 0.5}, "output_format": "pcm_16000"}, "tts"),
        ({"model_id": "eleven_turbo_v2_5"}, "tts"),
        ({"model_id": "scribe_v3_live"}, "stt"),
        ({"model_id": "scribe_v1", "diarize": True}, "stt"),
    ],
)
def test_a_flat_object_is_read_by_what_it_names(options: dict[str, Any], kind: str):
    migration = migrate_elevenlabs(options)
    assert set(migration.config) - {"providers.elevenlabs", "tts.voice_settings"} == {kind}


def test_batch_and_realtime_together_keep_each_endpoint_working():
    migration = migrate_elevenlabs({"speech_to_text": BATCH, "realtime": REALTIME})
    assert migration.config["stt"] == {
        "provider": "elevenlabs",
        "model": "scribe_v2",
        "realtime_model": "scribe_v2_realtime",
        "commit_strategy": "vad",
        "language": "en",
    }
    assert migration.config["profiles.batch.stt"] == {"tag_audio_events": True}
    assert migration.config["profiles.realtime.stt"] == {
        "vad_silence_threshold_secs": 0.8,
        "vad_threshold": 0.5,
        "min_speech_duration_ms": 100,
        "keyterms": ["Gradium"],
    }
    config = configured(migration)
    assert config.check() == [
        "stt: elevenlabs needs an API key: set ELEVENLABS_API_KEY",
        "profile 'batch' stt: elevenlabs needs an API key: set ELEVENLABS_API_KEY",
        "profile 'realtime' stt: elevenlabs needs an API key: set ELEVENLABS_API_KEY",
    ]
    config.stt(api_key="k").settings.batch_form()
    config.stt(api_key="k").settings.realtime_query("pcm_16000")
    assert config.stt("batch", api_key="k").settings.batch_form()["tag_audio_events"] == "true"
    realtime = dict(config.stt("realtime", api_key="k").settings.realtime_query("pcm_16000"))
    assert (realtime["vad_silence_threshold_secs"], realtime["keyterms"]) == ("0.8", "Gradium")
    assert any('transcribe_file(..., profile="batch")' in note for note in migration.notes)


def test_no_profile_when_nothing_differs():
    migration = migrate_elevenlabs(
        {"speech_to_text": {"model_id": "scribe_v1"}, "realtime": {"model_id": "scribe_v2_realtime"}}
    )
    assert [name for name in migration.config if name.startswith("profiles.")] == []


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"model_id": "scribe_v9"}, "model_id", "model='scribe_v9' is not accepted"),
        ({"model_id": "scribe_v1", "language_code": "English"}, "language_code", "ISO-639-1 or -3 code"),
        ({**REALTIME, "vad_silence_threshold_secs": 5}, "vad_silence_threshold_secs", "accepted: 0.3 to 3.0"),
        ({**REALTIME, "vad_threshold": "high"}, "vad_threshold", "vad_threshold must be a number"),
        ({**REALTIME, "commit_strategy": "auto"}, "commit_strategy", "commit_strategy='auto' is not accepted"),
        ({**REALTIME, "audio_format": "pcm_11025"}, "audio_format", "audio_format is one of pcm_8000"),
        ({**REALTIME, "sample_rate": 8000}, "sample_rate", "audio_format=pcm_16000 is 16000 Hz audio"),
        ({"model_id": "scribe_v2_realtime", "sample_rate": 16000}, "sample_rate", "goes with audio_format"),
        ({"model_id": "scribe_v1", "file_format": "mp3"}, "file_format", "pcm_s16le_16 or other"),
        ({"model_id": "scribe_v1", "keyterms": 5}, "keyterms", "keyterms must be a list of non-empty strings"),
    ],
)
def test_refused_stt_values_are_listed_not_written(options: dict[str, Any], field: str, reason: str):
    migration = migrate_elevenlabs(options)
    assert reason in reasons(migration)[field]
    written = {**migration.config["stt"], **migration.config.get("profiles.realtime.stt", {})}
    assert options[field] not in written.values()
    configured(migration).stt(api_key="k")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"realtime": {}, "text_to_speach": {}}, r"unknown keys \['text_to_speach'\] next to"),
        ({"realtime": "model_id=scribe_v2_realtime"}, r"realtime must be an object of ElevenLabs realtime options"),
    ],
)
def test_malformed_options_are_a_config_error(options: dict[str, Any], error: str):
    with pytest.raises(ConfigError, match=error):
        migrate_elevenlabs(options)
    with pytest.raises(ConfigError, match="object of option names"):
        migrate_elevenlabs(["voice_id"])  # type: ignore[arg-type]


def test_the_command_prints_the_config_and_what_did_not_map(tmp_path: Path):
    options = tmp_path / "options.json"
    options.write_text(json.dumps({**TTS_REQUEST, "xi_api_key": "sk-secret", "previous_text": "Before."}))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert cli.main(["migrate", "elevenlabs", str(options)]) == 0
    assert tomllib.loads(out.getvalue())["tts"]["voice"] == VOICE
    assert err.getvalue().splitlines()[0].startswith('not migrated: xi_api_key = "<redacted>": keys never go')
    assert "sk-secret" not in out.getvalue() + err.getvalue()


def gradium_tables(migration: Migration) -> dict[str, Any]:
    note = next(note for note in migration.notes if note.startswith("To switch this code to Gradium"))
    return tomllib.loads(note.split("\n\n", 1)[1])


@pytest.mark.parametrize(
    ("options", "stt"),
    [
        (REALTIME, {"provider": "gradium", "language": "en"}),
        ({**REALTIME, "language_code": "fra", "commit_strategy": "manual"}, {"provider": "gradium", "language": "fr",
                                                                               "turn_detection": False}),
        ({**REALTIME, "language_code": "ja"}, {"provider": "gradium"}),
    ],
)  # fmt: skip
def test_the_gradium_note_maps_language_and_commits(options: dict[str, Any], stt: dict[str, Any]):
    migration = migrate_elevenlabs(options)
    assert gradium_tables(migration)["stt"] == stt
    note = migration.notes[-1]
    if options["language_code"] == "ja":
        assert "Gradium recognises en, fr, de, es, pt only" in note
    if options["commit_strategy"] == "vad":
        assert "semantic VAD" in note


def test_the_gradium_tables_make_gradium_providers():
    pytest.importorskip("speechbridge_gradium")
    migration = migrate_elevenlabs({"speech_to_text": BATCH, "realtime": REALTIME, "text_to_speech": TTS_REQUEST})
    tables = gradium_tables(migration)
    assert tables["profiles"] == {
        "batch": {"stt": {"provider": "gradium"}},
        "realtime": {"stt": {"provider": "gradium"}},
    }
    assert "voice_settings have no exact counterpart" in migration.notes[-1]
    config = Config.from_dict(tables)
    assert config.stt(api_key="k").name == "gradium" and config.tts(api_key="k").name == "gradium"
    assert config.stt("realtime", api_key="k").name == "gradium"
    from speechbridge_elevenlabs.migrate import GRADIUM_LANGUAGES
    from speechbridge_gradium.protocol import LANGUAGES

    assert GRADIUM_LANGUAGES == LANGUAGES
