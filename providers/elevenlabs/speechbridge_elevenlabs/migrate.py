"""ElevenLabs options (a text-to-speech request, Scribe batch or realtime options) as speechbridge config.

The options are a flat object of one kind, or ``{"text_to_speech": {...}, "speech_to_text": {...}, "realtime": {...}}``
(the SDK's ``client.text_to_speech``, ``client.speech_to_text`` and ``client.speech_to_text.realtime``). A flat object
is text-to-speech options when it names a voice, voice settings, an output format or an ``eleven_*`` model; realtime
Scribe options when it names a realtime model or a realtime-only key (``audio_format``, ``commit_strategy``, the VAD
knobs); else batch Scribe options. ElevenLabs' defaults that differ from this backend's (the TTS model, the
``mp3_44100_128`` output, manual commits) are written out, so the code behaves as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from speechbridge.audio import AudioFormat
from speechbridge.errors import ConfigError
from speechbridge.migrate import Migration, Unmapped, as_bool, as_int, write_toml

from .protocol import OUTPUT_FORMATS, REALTIME_FORMATS, REALTIME_MODELS
from .settings import STREAM_ONLY, ElevenLabsSTTSettings, ElevenLabsTTSSettings
from .tts import output_format_for

__all__ = ["ELEVENLABS_DEFAULTS", "GRADIUM_LANGUAGES", "migrate_elevenlabs"]

API_KEY_ENV: Final = "ELEVENLABS_API_KEY"
PARTS: Final = ("text_to_speech", "speech_to_text", "realtime")
ELEVENLABS_DEFAULTS: Final = {"model": "eleven_multilingual_v2", "output_format": "mp3_44100_128",
                              "commit_strategy": "manual"}  # fmt: skip
GRADIUM_LANGUAGES: Final = ("en", "fr", "de", "es", "pt")  # speechbridge_gradium.protocol.LANGUAGES
ISO_639_3: Final = {"eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "por": "pt"}
SHARED_STT: Final = ("language", "keyterms", "no_verbatim", "enable_logging")
SECRET_FIELDS: Final = ("xi_api_key", "xi-api-key", "api_key", "token", "single_use_token", "authorization")

_TTS_MARKERS = ("voice_id", "voice_settings", "output_format", "text", "previous_text", "next_text",
                "pronunciation_dictionary_locators", "apply_text_normalization", "generation_config",
                "chunk_length_schedule", "sync_alignment", "auto_mode", "optimize_streaming_latency")  # fmt: skip
_REALTIME_MARKERS = ("audio_format", "commit_strategy", *STREAM_ONLY, "include_timestamps", "sample_rate",
                     "include_language_detection", "secondary_languages", "filter_background_audio")  # fmt: skip


def _text(name: str, value: Any) -> Any:
    return value


def _number(name: str, value: Any) -> float | int:
    """A number, or a string of one (query strings); the settings check the range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{name} must be a number, not {value!r}")


def _terms(name: str, value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else value


Convert = Callable[[str, Any], Any]
TTS_FIELDS: Final[Mapping[str, tuple[str, Convert]]] = {
    "voice_id": ("voice", _text),
    "model_id": ("model", _text),
    "language_code": ("language", _text),
    "seed": ("seed", as_int),
    "apply_text_normalization": ("apply_text_normalization", _text),
    "enable_logging": ("enable_logging", as_bool),
    "chunk_length_schedule": ("chunk_length_schedule", _terms),
    "auto_mode": ("auto_mode", as_bool),
    "inactivity_timeout": ("inactivity_timeout", as_int),
    "sync_alignment": ("word_timestamps", as_bool),
}
_STT_COMMON: Final[Mapping[str, tuple[str, Convert]]] = {
    "language_code": ("language", _text),
    "keyterms": ("keyterms", _terms),
    "no_verbatim": ("no_verbatim", as_bool),
    "enable_logging": ("enable_logging", as_bool),
}
BATCH_FIELDS: Final[Mapping[str, tuple[str, Convert]]] = {
    "model_id": ("model", _text),
    **_STT_COMMON,
    "tag_audio_events": ("tag_audio_events", as_bool),
    "temperature": ("temperature", _number),
    "seed": ("seed", as_int),
}
REALTIME_FIELDS: Final[Mapping[str, tuple[str, Convert]]] = {
    "model_id": ("realtime_model", _text),
    **_STT_COMMON,
    "commit_strategy": ("commit_strategy", _text),
    "vad_silence_threshold_secs": ("vad_silence_threshold_secs", _number),
    "vad_threshold": ("vad_threshold", _number),
    "min_speech_duration_ms": ("min_speech_duration_ms", as_int),
    "min_silence_duration_ms": ("min_silence_duration_ms", as_int),
}

_SPEAKERS = (
    "speaker labels are not in the common Transcript (its words carry no speaker): stream each speaker or channel "
    "separately, or keep the ElevenLabs SDK for diarised batch jobs"
)
_POST_PROCESS = "not sent by this backend; post-process Transcript.text and .words in your app"
_ENTITIES = "entity detection and redaction are not in the common Transcript: run them on Transcript.text in your app"
_STITCHING = (
    "request stitching is not an option: send the sentences of one reply through one tts.stream(), whose single "
    "context gives ElevenLabs the text around each sentence"
)
_KEY = "keys never go in config: the key comes from ELEVENLABS_API_KEY (api_key_env), a single-use token from token="
NO_EQUIVALENT: Final[Mapping[str, str]] = {
    "diarize": _SPEAKERS,
    "num_speakers": "goes with diarize: " + _SPEAKERS,
    "diarization_threshold": "goes with diarize: " + _SPEAKERS,
    "detect_speaker_roles": _SPEAKERS,
    "use_speaker_library": _SPEAKERS,
    "use_multi_channel": "speechbridge audio is mono: split the channels and transcribe (or stream) each one",
    "multichannel_output_style": "speechbridge audio is mono: split the channels and transcribe (or stream) each one",
    "numbers_format": _POST_PROCESS,
    "transcript_edit": _POST_PROCESS,
    "entity_detection": _ENTITIES,
    "entity_redaction": _ENTITIES,
    "entity_redaction_mode": _ENTITIES,
    "secondary_language_codes": "not sent by this backend: set language, or leave it out for auto-detection",
    "secondary_languages": "not sent by this backend: set language, or leave it out for auto-detection",
    "include_language_detection": "not sent by this backend: a final Transcript carries the language ElevenLabs "
    "reports with it (Transcript.language)",
    "filter_background_audio": "not sent by this backend (ElevenLabs refuses it with the word timestamps every "
    "speechbridge stream asks for)",
    "additional_formats": "export formats (srt, docx, ...) are not produced: build them from Transcript.words",
    "webhook": "speechbridge awaits results (await stt.transcribe(...)): run it in a task and post the result yourself",
    "webhook_id": "speechbridge awaits results: run transcribe() in a task and post the result yourself",
    "webhook_metadata": "speechbridge awaits results: keep the metadata next to the task in your app",
    "source_url": "speechbridge transcribes the audio you give it: download the file, then transcribe_file() it",
    "cloud_storage_url": "speechbridge transcribes the audio you give it: download the file, then transcribe_file() it",
    "url": "speechbridge streams take the audio you send: decode the stream's audio and send_audio() it",
    "file": "the audio is the argument of transcribe() / transcribe_file(), not config",
    "text": "the text is the argument of speak() / tts.synthesize() / stream.send_text(), not config",
    "previous_text": _STITCHING,
    "next_text": _STITCHING,
    "previous_request_ids": _STITCHING,
    "next_request_ids": _STITCHING,
    "pronunciation_dictionary_locators": "pronunciation dictionaries are not sent by this backend: spell the words "
    "as they sound in the text you send",
    "apply_language_text_normalization": "not sent by this backend: normalise the text (numbers, dates) before sending",
    "use_pvc_as_ivc": "not sent by this backend: the voice is used as ElevenLabs serves it",
    "audio_effects": "audio effects are not sent by this backend: apply them to the audio in your app",
    "enable_ssml_parsing": "SSML is not parsed by speechbridge providers: send plain text",
    "optimize_streaming_latency": "a deprecated ElevenLabs option: a faster model (eleven_flash_v2_5) and "
    "tts.stream() lower the latency",
    "try_trigger_generation": "sent by this backend with every piece of text: not an option",
    **{name: _KEY for name in SECRET_FIELDS},
}


@attrs.define
class _Result:
    stt: dict[str, Any] = attrs.Factory(dict)
    tts: dict[str, Any] = attrs.Factory(dict)
    voice_settings: dict[str, Any] = attrs.Factory(dict)
    profiles: dict[str, dict[str, Any]] = attrs.Factory(dict)
    audio: dict[str, str] = attrs.Factory(dict)
    unmapped: list[Unmapped] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)

    def refuse(self, name: str, value: Any, reason: str) -> None:
        self.unmapped.append(Unmapped(name, "<redacted>" if name in SECRET_FIELDS else value, reason))

    def without_equivalent(self, name: str, value: Any, kind: str) -> None:
        """List an option speechbridge has no equivalent for; a feature switched off (``false``) is what it does."""
        if name in NO_EQUIVALENT and value is False:
            return
        self.refuse(name, value, NO_EQUIVALENT.get(name, f"not an ElevenLabs {kind} option this migration knows"))


def migrate_elevenlabs(options: Mapping[str, Any]) -> Migration:
    """ElevenLabs TTS and/or Scribe options as ``[stt]`` / ``[tts]`` / ``[providers.elevenlabs]`` config."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"ElevenLabs options are an object of option names, not {type(options).__name__}")
    parts = {kind: _given(part) for kind, part in _parts(options).items()}
    result = _Result()
    batch = _stt_part(parts["speech_to_text"], BATCH_FIELDS, "batch", result) if "speech_to_text" in parts else None
    realtime = _realtime(parts["realtime"], result) if "realtime" in parts else None
    if "text_to_speech" in parts:
        _tts(parts["text_to_speech"], result)
    _combine_stt(batch, realtime, result)
    config: dict[str, dict[str, Any]] = {}
    if batch is not None or realtime is not None:
        config["stt"] = {"provider": "elevenlabs", **result.stt}
    if "text_to_speech" in parts:
        config["tts"] = {"provider": "elevenlabs", **result.tts}
        if result.voice_settings:
            config["tts.voice_settings"] = result.voice_settings
    for name, table in result.profiles.items():
        config[f"profiles.{name}.stt"] = table
    config["providers.elevenlabs"] = {"api_key_env": API_KEY_ENV}
    result.notes.append(_gradium_note(config, result.profiles))
    return Migration("elevenlabs", config, result.audio, tuple(result.unmapped), tuple(result.notes))


def _parts(options: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The options of each kind, keyed by :data:`PARTS`."""
    if set(options) & set(PARTS):
        extra = sorted(set(options) - set(PARTS))
        if extra:
            raise ConfigError(f"unknown keys {extra} next to {'/'.join(PARTS)}", allowed=PARTS)
        for name, part in options.items():
            if not isinstance(part, Mapping):
                raise ConfigError(f"{name} must be an object of ElevenLabs {name} options, not {part!r}")
        return dict(options)
    model = str(options.get("model_id", ""))
    if model.startswith("eleven_") or any(name in options for name in _TTS_MARKERS):
        return {"text_to_speech": options}
    if model in REALTIME_MODELS or any(name in options for name in _REALTIME_MARKERS):
        return {"realtime": options}
    return {"speech_to_text": options}


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that set something: null and empty values (``"previous_text": null``, ``[]``) are left out."""
    return {name: value for name, value in options.items() if value is not None and value != [] and value != {}}


def _take(
    name: str,
    value: Any,
    fields: Mapping[str, tuple[str, Convert]],
    settings: type,
    target: dict[str, Any],
    result: _Result,
) -> None:
    """Convert one option and validate it alone; a refused value is listed with the settings' reason."""
    field, convert = fields[name]
    try:
        converted = convert(name, value)
        settings(**{field: converted})
    except ConfigError as error:
        result.refuse(name, value, error.message)
        return
    target[field] = converted


def _stt_part(
    options: Mapping[str, Any], fields: Mapping[str, tuple[str, Convert]], kind: str, result: _Result
) -> dict[str, Any]:
    taken: dict[str, Any] = {}
    for name, value in options.items():
        if name in fields:
            _take(name, value, fields, ElevenLabsSTTSettings, taken, result)
        elif name == "timestamps_granularity" and kind == "batch":
            if value == "character":
                result.refuse(name, value, "the common Transcript has word timings only (Transcript.words)")
            elif value not in ("word", "none"):
                result.refuse(name, value, "timestamps_granularity is none, word or character")
        elif name == "file_format" and kind == "batch":
            _file_format(value, result)
        elif name not in ("include_timestamps", "audio_format", "sample_rate") or kind == "batch":
            result.without_equivalent(name, value, f"{kind} speech-to-text")
    return taken


def _file_format(value: Any, result: _Result) -> None:
    if value == "pcm_s16le_16":
        result.audio.setdefault("stt", "pcm_16000")
    elif value != "other":
        result.refuse("file_format", value, "file_format is pcm_s16le_16 or other (containers carry their format)")


def _realtime(options: Mapping[str, Any], result: _Result) -> dict[str, Any]:
    taken = _stt_part(options, REALTIME_FIELDS, "realtime", result)
    if "commit_strategy" not in options:
        taken["commit_strategy"] = ELEVENLABS_DEFAULTS["commit_strategy"]
        result.notes.append(
            'ElevenLabs\' realtime default written out (this backend\'s is "vad"): commit_strategy = "manual"'
        )
    name, rate = options.get("audio_format"), options.get("sample_rate")
    if name is None:
        if rate is not None:
            result.refuse("sample_rate", rate, "sample_rate goes with audio_format (pcm_16000, ulaw_8000, ...)")
        return taken
    if name not in REALTIME_FORMATS:
        result.refuse("audio_format", name, f"audio_format is one of {', '.join(REALTIME_FORMATS)}")
        return taken
    declared = REALTIME_FORMATS[name]
    if rate is not None and rate != declared.sample_rate and str(rate) != str(declared.sample_rate):
        result.refuse("sample_rate", rate, f"audio_format={name} is {declared.sample_rate} Hz audio")
    result.audio["stt"] = str(declared)
    return taken


def _combine_stt(batch: dict[str, Any] | None, realtime: dict[str, Any] | None, result: _Result) -> None:
    """One ``[stt]``; given both, what only one endpoint takes (or takes differently) goes into a profile.

    This backend refuses the other endpoint's options rather than drop them, so batch-only options in ``[stt]`` would
    make every stream fail, and realtime-only ones every ``transcribe()``.
    """
    if batch is None or realtime is None:
        result.stt.update(batch or realtime or {})
        return
    shared = {key: value for key, value in batch.items() if key in SHARED_STT and realtime.get(key) == value}
    result.stt.update({key: batch[key] for key in ("model",) if key in batch})
    result.stt.update({key: realtime[key] for key in ("realtime_model", "commit_strategy") if key in realtime})
    result.stt.update(shared)
    for name, taken in (("batch", batch), ("realtime", realtime)):
        own = {key: value for key, value in taken.items() if key not in result.stt}
        if own:
            result.profiles[name] = own
    if result.profiles:
        calls = {"batch": 'transcribe_file(..., profile="batch")', "realtime": 'config.stt(profile="realtime")'}
        result.notes.append(
            "What only one endpoint takes is in a profile (this backend refuses the other endpoint's options): "
            + "; ".join(f"[profiles.{name}] for {calls[name]}" for name in result.profiles)
        )


def _tts(options: Mapping[str, Any], result: _Result) -> None:
    for name, value in options.items():
        if name in TTS_FIELDS:
            _take(name, value, TTS_FIELDS, ElevenLabsTTSSettings, result.tts, result)
        elif name == "voice_settings":
            _voice_settings(value, result)
        elif name == "generation_config" and isinstance(value, Mapping):
            for key, item in value.items():
                if key == "chunk_length_schedule":
                    _take(key, item, TTS_FIELDS, ElevenLabsTTSSettings, result.tts, result)
                else:
                    result.refuse(f"generation_config.{key}", item, "not a generation_config key this backend sends")
        elif name != "output_format":
            result.without_equivalent(name, value, "text-to-speech")
    if "model" not in result.tts and "model_id" not in options:
        result.tts["model"] = ELEVENLABS_DEFAULTS["model"]
        result.notes.append(
            "ElevenLabs' default model written out (this backend's is eleven_flash_v2_5): "
            'model = "eleven_multilingual_v2"'
        )
    socket_only = [name for name in ("chunk_length_schedule", "auto_mode", "inactivity_timeout") if name in result.tts]
    if socket_only:
        result.notes.append(
            f"{', '.join(socket_only)} are socket options: tts.stream() sends them, and tts.synthesize() refuses them "
            "(UnsupportedFeature); leave them out to synthesize with this config"
        )
    _output_format(options.get("output_format"), result)


def _voice_settings(value: Any, result: _Result) -> None:
    if not isinstance(value, Mapping):
        result.refuse("voice_settings", value, 'voice_settings is an object such as {"stability": 0.5}')
        return
    for key, item in _given(value).items():
        try:
            if key == "speed":
                ElevenLabsTTSSettings(speed=item)
            else:
                ElevenLabsTTSSettings(voice_settings={key: item})
        except ConfigError as error:
            result.refuse(f"voice_settings.{key}", item, error.message)
            continue
        if key == "speed":
            result.tts["speed"] = item
        else:
            result.voice_settings[key] = item


def _output_format(name: Any, result: _Result) -> None:
    """The ``output_format`` (ElevenLabs' default when none) becomes the format the caller declares."""
    if name is None:
        name = ELEVENLABS_DEFAULTS["output_format"]
        result.notes.append(
            "your options name no output_format: ElevenLabs' default is mp3_44100_128, declared here as mp3_44100 "
            "(this backend's default is WAV)"
        )
    if name not in OUTPUT_FORMATS:
        result.refuse("output_format", name, f"output_format is one of {', '.join(OUTPUT_FORMATS)}")
        return
    declared: AudioFormat = OUTPUT_FORMATS[name]
    result.audio["tts"] = str(declared)
    if not declared.is_raw:
        result.notes.append(
            f"{declared} is for tts.synthesize() / speak(): tts.stream() takes raw audio only (pcm_<rate>, "
            "mulaw_8000, alaw_8000), as ElevenLabs' sockets do"
        )
    asked = output_format_for(declared, streaming=False)
    if asked != name and declared.encoding in ("mp3", "ogg_opus"):
        result.notes.append(
            f"output_format {name}: for {declared} this backend asks ElevenLabs for {asked}"
            + (" and encodes Opus itself" if declared.encoding == "ogg_opus" else "")
            + ": the bitrate differs"
        )


def _gradium_language(language: str) -> str | None:
    base = ISO_639_3.get(language, language)
    return base if base in GRADIUM_LANGUAGES else None


def _gradium_note(config: Mapping[str, Mapping[str, Any]], profiles: Mapping[str, Mapping[str, Any]]) -> str:
    """The settings that move this code to Gradium, as TOML, with what changes in behaviour."""
    tables: dict[str, dict[str, Any]] = {}
    lines = ["To switch this code to Gradium, use these tables instead of the elevenlabs ones:"]
    if "stt" in config:
        stt: dict[str, Any] = {"provider": "gradium"}
        language = config["stt"].get("language")
        if language is not None:
            if _gradium_language(language):
                stt["language"] = _gradium_language(language)
            else:
                lines.append(f"- language {language!r}: Gradium recognises {', '.join(GRADIUM_LANGUAGES)} only")
        if config["stt"].get("commit_strategy") == "manual":
            stt["turn_detection"] = False
            lines.append(
                "- turn_detection = false: like manual commits, only flush() and end() finish a segment (no TurnEnded)"
            )
        elif "commit_strategy" in config["stt"] or "realtime" in profiles:
            lines.append(
                "- turns end on Gradium's semantic VAD (TurnEnded, reason semantic_vad), not after "
                "vad_silence_threshold_secs of silence: a pause mid-sentence does not end the turn; turn_threshold "
                "and turn_horizon_s tune it"
            )
        lines.append("- flush() commits on both; Gradium has no keyterms, no_verbatim, tag_audio_events or seed")
        tables["stt"] = stt
    if "tts" in config:
        tables["tts"] = {"provider": "gradium"}
        lines.append("- ElevenLabs voices do not exist on Gradium: pick one from `speechbridge voices`")
        if "tts.voice_settings" in config or "speed" in config["tts"]:
            lines.append(
                "- voice_settings have no exact counterpart; Gradium's voice knobs are temp (stability, inverted), "
                "cfg_coef (similarity_boost) and padding_bonus (speed, negative is faster): start from the defaults "
                "and measure with `speechbridge compare`"
            )
    for name in profiles:
        tables[f"profiles.{name}.stt"] = {"provider": "gradium"}
    tables["providers.gradium"] = {"api_key_env": "GRADIUM_API_KEY"}
    lines.append(
        "- audio: write pcm_<rate> (e.g. pcm_22050), never bare pcm: Gradium reads bare pcm as 24 kHz input and "
        "speaks it at 48 kHz; mulaw_8000 telephony audio works both ways; Gradium makes no MP3 (speechbridge "
        "encodes it)"
    )
    return "\n".join([*lines, "", write_toml(tables).rstrip()])
