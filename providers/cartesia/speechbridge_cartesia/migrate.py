"""Cartesia options (a TTS request body, STT options) as speechbridge config for this backend.

The options are one TTS generation request (the ``/tts/bytes`` or ``/tts/sse`` body, or a ``/tts/websocket``
message), STT options (the ``/stt`` form fields or the ``/stt/websocket`` query), or ``{"stt": {...}, "tts": {...}}``.
A flat object is a TTS request when it has a field only TTS requests have (``model_id``, ``voice``, ``output_format``,
``transcript``, ...) or a ``sonic`` model, else STT options. Cartesia's ``add_timestamps`` is off by default and this
backend's ``word_timestamps`` on: it is written out, so synthesis reads ``/tts/bytes`` as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from speechbridge.audio import AudioFormat
from speechbridge.errors import ConfigError, SpeechBridgeError
from speechbridge.migrate import Migration, Unmapped, as_bool, as_int, write_toml

from .protocol import STT_ENCODINGS, TTS_ENCODINGS, OutputFormat
from .settings import CartesiaSTTSettings, CartesiaTTSSettings

__all__ = ["GRADIUM_LANGUAGES", "NO_EQUIVALENT", "TTS_ONLY", "migrate_cartesia"]

API_KEY_ENV: Final = "CARTESIA_API_KEY"
GRADIUM_LANGUAGES: Final = ("en", "fr", "de", "es", "pt")  # speechbridge_gradium.protocol.LANGUAGES
GENERATION_CONFIG: Final = ("speed", "volume", "emotion")
MP3_BIT_RATE: Final = 128000  # what this backend asks of Cartesia

_TURNS = (
    "ink-2 turn detection (/stt/turns/websocket) is not implemented by this backend: with ink-whisper Cartesia "
    "finalizes after max_silence_duration_secs of silence, and the stream gives TurnEnded"
)
_KEYS = "keys never go in config: the key comes from CARTESIA_API_KEY (api_key_env of [providers.cartesia])"
NO_EQUIVALENT: Final[Mapping[str, str]] = {
    "transcript": "the text itself: pass it to tts.synthesize(text) or stream.send_text(text)",
    "context_id": (
        "each tts.stream() is a context with a fresh context_id; multiplex = true puts a provider's streams on one "
        "socket"
    ),
    "continue": "stream.send_text() sends continue: true, stream.end() sends continue: false",
    "flush": "stream.flush() flushes the context and returns on its flush_done",
    "cancel": "leaving a stream's block early cancels its context",
    "add_phoneme_timestamps": "phoneme timings are not in the common events: WordTiming carries words",
    "use_normalized_timestamps": "not sent by this backend: word timings are of the text as sent",
    "pronunciation_dict_id": (
        "pronunciation dictionaries are not sent by this backend: write the words as they should sound in the text"
    ),
    "normalization": "not sent by this backend: Cartesia's default (auto) text normalizer runs",
    "save": "speechbridge returns the audio (Synthesis.audio, AudioChunk.data): store it yourself",
    "speed": (
        "the legacy speed setting (slow, normal, fast) is not sent: on sonic-3 use generation_config.speed, 0.6 to 1.5"
    ),
    "stream": "a 2.x SDK flag: the call chooses, tts.synthesize() whole or tts.stream() streamed",
    "duration": "not sent by this backend: the audio lasts as long as the text takes",
    "file": "the audio itself: pass it to stt.transcribe() or transcribe_file()",
    "keyterm": "keyterm prompting is not sent by this backend: check important words in Transcript.text",
    "turn_start_threshold": _TURNS,
    "turn_end_threshold": _TURNS,
    "turn_eager_end_threshold": _TURNS,
    "turn_end_timeout_ms": _TURNS,
    "api_key": _KEYS,
    "access_token": _KEYS,
}
TTS_ONLY: Final = frozenset(
    {
        "model_id",
        "voice",
        "voice_id",
        "output_format",
        "transcript",
        "generation_config",
        "add_timestamps",
        "add_phoneme_timestamps",
        "use_normalized_timestamps",
        "context_id",
        "continue",
        "flush",
        "cancel",
        "max_buffer_delay_ms",
        "pronunciation_dict_id",
        "normalization",
        "locale",
        "save",
        "speed",
        "stream",
        "duration",
    }
)


def _number(name: str, value: Any) -> float | int:
    """``value`` as a number: an int, a float, or a string of one (a query string's values are text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{name} must be a number, not {value!r}")


def _as_given(name: str, value: Any) -> Any:
    return value


STT_FIELDS: Final[Mapping[str, tuple[str, Callable[[str, Any], Any]]]] = {
    "model": ("model", _as_given),
    "language": ("language", _as_given),
    "min_volume": ("min_volume", _number),
    "max_silence_duration_secs": ("max_silence_duration_secs", _number),
}
TTS_FIELDS: Final[Mapping[str, tuple[str, Callable[[str, Any], Any]]]] = {
    "model_id": ("model", _as_given),
    "model": ("model", _as_given),
    "language": ("language", _as_given),
    "locale": ("language", _as_given),
    "max_buffer_delay_ms": ("max_buffer_delay_ms", as_int),
    "add_timestamps": ("word_timestamps", as_bool),
    "generation_config.speed": ("speed", _number),
    "generation_config.volume": ("volume", _number),
    "generation_config.emotion": ("emotion", _as_given),
}


def migrate_cartesia(options: Mapping[str, Any]) -> Migration:
    """A Cartesia TTS request and/or STT options as ``[stt]`` / ``[tts]`` / ``[providers.cartesia]`` config."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"Cartesia options are an object of field names, not {type(options).__name__}")
    if set(options) & {"stt", "tts"}:
        extra = sorted(set(options) - {"stt", "tts"})
        if extra:
            raise ConfigError(f"unknown keys {extra} next to stt/tts", allowed=("stt", "tts"))
        stt, tts = options.get("stt"), options.get("tts")
    elif set(options) & TTS_ONLY or str(options.get("model", "")).startswith("sonic"):
        stt, tts = None, options
    else:
        stt, tts = options, None
    for part, label in ((stt, "stt"), (tts, "tts")):
        if part is not None and not isinstance(part, Mapping):
            raise ConfigError(f"{label} must be an object of Cartesia {label.upper()} options, not {part!r}")
    result = _Result()
    if stt is not None:
        _stt(stt, result)
    if tts is not None:
        _tts(tts, result)
    config: dict[str, dict[str, Any]] = {}
    if stt is not None:
        config["stt"] = {"provider": "cartesia", **result.stt}
    if tts is not None:
        config["tts"] = {"provider": "cartesia", **result.tts}
    config["providers.cartesia"] = {"api_key_env": API_KEY_ENV, **result.shared}
    result.notes.append(_gradium_note(config))
    return Migration("cartesia", config, result.audio, tuple(result.unmapped), tuple(result.notes))


@attrs.define
class _Result:
    stt: dict[str, Any] = attrs.Factory(dict)
    tts: dict[str, Any] = attrs.Factory(dict)
    shared: dict[str, Any] = attrs.Factory(dict)
    audio: dict[str, str] = attrs.Factory(dict)
    unmapped: list[Unmapped] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)


def _take(
    result: _Result,
    fields: Mapping[str, tuple[str, Callable[[str, Any], Any]]],
    name: str,
    value: Any,
    settings: type[CartesiaSTTSettings | CartesiaTTSSettings],
    into: dict[str, Any],
) -> None:
    """Convert and validate one option alone; a refused value is listed with the validator's reason."""
    field, convert = fields[name]
    try:
        converted = convert(name, value)
        settings(**{field: converted})
    except ConfigError as error:
        result.unmapped.append(Unmapped(name, value, error.message))
        return
    into[field] = converted


def _version(result: _Result, name: str, value: Any) -> None:
    try:
        CartesiaSTTSettings(version=value)
    except ConfigError as error:
        result.unmapped.append(Unmapped(name, value, error.message))
        return
    result.shared["version"] = value


def _stt(options: Mapping[str, Any], result: _Result) -> None:
    for name, value in options.items():
        if name in STT_FIELDS:
            _take(result, STT_FIELDS, name, value, CartesiaSTTSettings, result.stt)
        elif name == "timestamp_granularities":
            _granularities(result, value)
        elif name in ("cartesia_version", "version"):
            _version(result, name, value)
        elif name not in ("encoding", "sample_rate"):
            result.unmapped.append(Unmapped(name, value, NO_EQUIVALENT.get(name, _unknown("STT"))))
    _stt_audio(options, result)


def _granularities(result: _Result, value: Any) -> None:
    kinds = [value] if isinstance(value, str) else value
    if not isinstance(kinds, list) or not set(kinds) <= {"word"}:
        reason = "the timings are per word (WordTiming, Transcript.words): timestamp_granularities takes 'word'"
        result.unmapped.append(Unmapped("timestamp_granularities", value, reason))
        return
    result.stt["word_timestamps"] = "word" in kinds


def _stt_audio(options: Mapping[str, Any], result: _Result) -> None:
    """``encoding`` + ``sample_rate`` become the format the caller declares for its streams and raw audio."""
    encoding, rate = options.get("encoding"), options.get("sample_rate")
    if encoding is None:
        if rate is not None:
            reason = "sample_rate goes with encoding; files (wav, flac, mp3, ogg) carry their own rate"
            result.unmapped.append(Unmapped("sample_rate", rate, reason))
        return
    if encoding not in STT_ENCODINGS:
        reason = (
            f"encoding {encoding!r} is not sent by this backend (accepted: {', '.join(STT_ENCODINGS)}): "
            "convert the audio to 16-bit PCM (pcm_<rate>) first"
        )
        result.unmapped.append(Unmapped("encoding", encoding, reason))
        return
    if rate is None:
        reason = f"Cartesia needs sample_rate with encoding={encoding}; so does speechbridge"
        result.unmapped.append(Unmapped("encoding", encoding, reason))
        return
    try:
        result.audio["stt"] = str(AudioFormat(STT_ENCODINGS[encoding], as_int("sample_rate", rate)))  # type: ignore[arg-type]
    except SpeechBridgeError as error:
        result.unmapped.append(Unmapped("sample_rate", rate, error.message))


def _tts(options: Mapping[str, Any], result: _Result) -> None:
    for name, value in options.items():
        if name == "locale" and "language" in options:
            reason = "Cartesia takes language or locale, never both: language is kept"
            result.unmapped.append(Unmapped(name, value, reason))
        elif name in TTS_FIELDS:
            _take(result, TTS_FIELDS, name, value, CartesiaTTSSettings, result.tts)
        elif name in ("voice", "voice_id"):
            _voice(result, name, value)
        elif name == "generation_config":
            _generation_config(result, value)
        elif name == "output_format":
            _output_format(result, value)
        elif name in ("cartesia_version", "version"):
            _version(result, name, value)
        else:
            result.unmapped.append(Unmapped(name, value, NO_EQUIVALENT.get(name, _unknown("TTS request"))))
    if "add_timestamps" not in options:
        result.tts["word_timestamps"] = False
        result.notes.append("Cartesia's default written out (this backend's differs): word_timestamps = false")


def _voice(result: _Result, name: str, value: Any) -> None:
    """``voice``: a voice id, ``{"mode": "id", "id": ...}`` or ``{"id": ...}``; legacy controls are listed."""
    if isinstance(value, Mapping):
        if value.get("mode", "id") != "id":
            reason = (
                f"{value.get('mode')!r} voices are not offered by this backend: clone or pick a voice at Cartesia "
                "and use its id"
            )
            result.unmapped.append(Unmapped(name, value, reason))
            return
        for key, each in value.items():
            if key not in ("mode", "id"):
                reason = (
                    "the sonic-2 voice controls are not sent: on sonic-3 use generation_config speed and emotion"
                    if key == "__experimental_controls"
                    else "not a voice field this backend sends (accepted: mode, id)"
                )
                result.unmapped.append(Unmapped(f"{name}.{key}", each, reason))
        voice_id: Any = value.get("id")
    else:
        voice_id = value
    try:
        CartesiaTTSSettings(voice=voice_id)
    except ConfigError as error:
        result.unmapped.append(Unmapped(name, value, error.message))
        return
    result.tts["voice"] = voice_id


def _generation_config(result: _Result, value: Any) -> None:
    if not isinstance(value, Mapping):
        reason = "generation_config is an object (accepted keys: speed, volume, emotion)"
        result.unmapped.append(Unmapped("generation_config", value, reason))
        return
    for key, each in value.items():
        name = f"generation_config.{key}"
        if key in GENERATION_CONFIG:
            _take(result, TTS_FIELDS, name, each, CartesiaTTSSettings, result.tts)
        else:
            reason = f"not a generation_config field this backend sends (accepted: {', '.join(GENERATION_CONFIG)})"
            result.unmapped.append(Unmapped(name, each, reason))


def _output_format(result: _Result, value: Any) -> None:
    """``output_format`` becomes the format the caller asks for; what speechbridge does not keep is listed."""
    try:
        output = OutputFormat.from_json(value)
    except SpeechBridgeError as error:
        result.unmapped.append(Unmapped("output_format", value, error.message))
        return
    result.audio["tts"] = str(output.audio_format)
    if output.container == "wav" and output.encoding not in (None, "pcm_s16le"):
        reason = (
            f"a WAV from speechbridge holds 16-bit PCM: for {output.encoding} samples ask for raw "
            f"{AudioFormat(TTS_ENCODINGS[output.encoding], output.sample_rate)} instead"  # type: ignore[arg-type]
        )
        result.unmapped.append(Unmapped("output_format.encoding", output.encoding, reason))
    if output.container == "mp3" and output.bit_rate not in (None, MP3_BIT_RATE):
        reason = f"this backend asks Cartesia for {MP3_BIT_RATE} bit/s MP3: re-encode it for another bit rate"
        result.unmapped.append(Unmapped("output_format.bit_rate", output.bit_rate, reason))


def _unknown(kind: str) -> str:
    return f"not a Cartesia {kind} field this migration knows"


def _gradium_note(config: Mapping[str, Mapping[str, Any]]) -> str:
    """The settings that move this code to Gradium, as TOML, with what changes in behaviour."""
    tables: dict[str, dict[str, Any]] = {}
    lines = ["To switch this code to Gradium, use these tables instead of the cartesia ones:"]
    if "stt" in config:
        stt: dict[str, Any] = {"provider": "gradium"}
        language = str(config["stt"].get("language", "en"))
        if language in GRADIUM_LANGUAGES:
            stt["language"] = language
        else:
            lines.append(f"- language {language!r}: Gradium recognises {', '.join(GRADIUM_LANGUAGES)} only")
        lines.append(
            "- Gradium ends turns on its semantic VAD (TurnEnded), not after max_silence_duration_secs of silence: "
            "min_volume and max_silence_duration_secs have no counterpart (turn_threshold and turn_horizon_s tune "
            "turns); finalize is stream.flush() on both"
        )
        tables["stt"] = stt
    if "tts" in config:
        tables["tts"] = {"provider": "gradium"}
        lines.append("- Cartesia's voices do not exist on Gradium: pick one from `speechbridge voices`")
        dropped = [name for name in (*GENERATION_CONFIG, "max_buffer_delay_ms") if name in config["tts"]]
        if dropped:
            lines.append(f"- {', '.join(dropped)}: no Gradium counterpart")
    tables["providers.gradium"] = {"api_key_env": "GRADIUM_API_KEY"}
    lines.append(
        "- audio: write pcm_<rate> (e.g. pcm_16000), never bare pcm: Gradium reads bare pcm as 24 kHz input and "
        "speaks it at 48 kHz; mulaw_8000 telephony audio works both ways"
    )
    return "\n".join([*lines, "", write_toml(tables).rstrip()])
