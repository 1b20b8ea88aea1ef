"""Deepgram options (``/v1/listen`` live or prerecorded, ``/v1/speak``) as speechbridge config for this backend.

The options are a flat object of one kind, or ``{"listen": {...}, "speak": {...}}``. A flat object is speak options
when its ``model`` is an Aura voice, else listen options. Deepgram's defaults that differ from this backend's
(``interim_results``, ``vad_events``, ``endpointing``) are written out, so a live session behaves as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from speechbridge.errors import AudioFormatError, ConfigError
from speechbridge.migrate import Migration, Unmapped, as_bool, as_int, toml_value, write_toml

from .protocol import STT_ENCODINGS, speak_format
from .settings import VOICE_PATTERN, DeepgramSTTSettings, DeepgramTTSSettings

__all__ = ["GRADIUM_DELAYS_IN_FRAMES", "GRADIUM_LANGUAGES", "migrate_deepgram"]

API_KEY_ENV: Final = "DEEPGRAM_API_KEY"
LIVE_ONLY: Final = ("interim_results", "endpointing", "utterance_end_ms", "vad_events", "encoding", "sample_rate")
DEEPGRAM_LIVE_DEFAULTS: Final = {"interim_results": False, "vad_events": False, "endpointing": 10}
GRADIUM_LANGUAGES: Final = ("en", "fr", "de", "es", "pt")  # speechbridge_gradium.protocol.LANGUAGES
GRADIUM_DELAYS_IN_FRAMES: Final = (7, 8, 10, 12, 14, 16, 20, 24, 32, 36, 48)  # of 80 ms each
GRADIUM_FRAME_MS: Final = 80

_POST_PROCESS = "not part of the common Transcript; post-process Transcript.text and .words in your app"
_INTELLIGENCE = "audio intelligence, not speech-to-text: send the final transcript text to Deepgram's /v1/read"
_STRUCTURE = (
    "the common Transcript has no paragraphs or utterances: a stream gives one final Transcript per segment and "
    "TurnEnded per utterance, with word timings"
)
_CALLBACK = "speechbridge awaits results (await stt.transcribe(...)); run it in a task and post the result yourself"
NO_EQUIVALENT: Final[Mapping[str, str]] = {
    "diarize": "speaker labels are not in the common Transcript: stream each speaker (or channel) separately",
    "diarize_version": "speaker labels are not in the common Transcript",
    "multichannel": "speechbridge streams are mono: split the channels and open one stream per channel",
    "numerals": "not sent by this backend; smart_format=true formats numbers (and more)",
    "dictation": "not sent by this backend; " + _POST_PROCESS,
    "measurements": "not sent by this backend; " + _POST_PROCESS,
    "profanity_filter": "not sent by this backend; " + _POST_PROCESS,
    "filler_words": "not sent by this backend; " + _POST_PROCESS,
    "redact": "redaction is not sent by this backend: redact Transcript.text (and words) in your app",
    "search": "search hits are " + _POST_PROCESS,
    "replace": "term replacement is " + _POST_PROCESS,
    "tag": "usage tags are not sent by this backend (speechbridge compare reports cost per profile)",
    "extra": "extra metadata is not sent by this backend: keep it next to the session in your app",
    "callback": _CALLBACK,
    "callback_method": _CALLBACK,
    "mip_opt_out": "not sent by this backend: opt out of the Model Improvement Program for the project at Deepgram",
    "version": "not sent by this backend: the model's current version is used",
    "tier": "a retired Deepgram option: the model name (e.g. nova-3) chooses the tier",
    "alternatives": "the common Transcript carries the best alternative only",
    "detect_language": "not sent by this backend: set language (or language='multi' on nova-3 for code switching)",
    "paragraphs": _STRUCTURE,
    "utterances": _STRUCTURE,
    "utt_split": _STRUCTURE,
    "summarize": _INTELLIGENCE,
    "sentiment": _INTELLIGENCE,
    "intents": _INTELLIGENCE,
    "topics": _INTELLIGENCE,
    "detect_topics": _INTELLIGENCE,
    "detect_entities": _INTELLIGENCE,
    "custom_topic": _INTELLIGENCE,
    "custom_topic_mode": _INTELLIGENCE,
    "custom_intent": _INTELLIGENCE,
    "custom_intent_mode": _INTELLIGENCE,
    "bit_rate": "speechbridge encodes mp3/opus itself: re-encode the audio if you need a given bitrate",
}
LISTEN_FIELDS: Final[Mapping[str, Callable[[str, Any], Any]]] = {
    "model": lambda name, value: value,
    "language": lambda name, value: value,
    "interim_results": as_bool,
    "endpointing": lambda name, value: False if str(value).lower() == "false" else as_int(name, value),
    "utterance_end_ms": as_int,
    "vad_events": as_bool,
    "smart_format": as_bool,
    "punctuate": as_bool,
    "keyterm": lambda name, value: [value] if isinstance(value, str) else value,
}


def migrate_deepgram(options: Mapping[str, Any]) -> Migration:
    """Deepgram listen and/or speak options as ``[stt]`` / ``[tts]`` / ``[providers.deepgram]`` config."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"Deepgram options are an object of option names, not {type(options).__name__}")
    if set(options) & {"listen", "speak"}:
        extra = sorted(set(options) - {"listen", "speak"})
        if extra:
            raise ConfigError(f"unknown keys {extra} next to listen/speak", allowed=("listen", "speak"))
        listen, speak = options.get("listen"), options.get("speak")
    elif VOICE_PATTERN.fullmatch(str(options.get("model", ""))):
        listen, speak = None, options
    else:
        listen, speak = options, None
    result = _Result()
    for part, label in ((listen, "listen"), (speak, "speak")):
        if part is not None and not isinstance(part, Mapping):
            raise ConfigError(f"{label} must be an object of Deepgram {label} options, not {part!r}")
    if listen is not None:
        _listen(listen, result)
    if speak is not None:
        _speak(speak, result)
    config: dict[str, dict[str, Any]] = {}
    if listen is not None:
        config["stt"] = {"provider": "deepgram", **result.stt}
    if speak is not None:
        config["tts"] = {"provider": "deepgram", **result.tts}
    config["providers.deepgram"] = {"api_key_env": API_KEY_ENV}
    result.notes.append(_gradium_note(config))
    return Migration("deepgram", config, result.audio, tuple(result.unmapped), tuple(result.notes))


@attrs.define
class _Result:
    stt: dict[str, Any] = attrs.Factory(dict)
    tts: dict[str, Any] = attrs.Factory(dict)
    audio: dict[str, str] = attrs.Factory(dict)
    unmapped: list[Unmapped] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)


def _listen(options: Mapping[str, Any], result: _Result) -> None:
    for name, value in options.items():
        field = "keyterm" if name == "keyterms" else name
        if field in LISTEN_FIELDS:
            _take(result, name, value, field)
        elif name not in ("encoding", "sample_rate", "channels"):
            result.unmapped.append(_unmapped(name, value, "listen"))
    _stt_audio(options, result)
    if any(name in options for name in LIVE_ONLY):
        kept = {name: value for name, value in DEEPGRAM_LIVE_DEFAULTS.items() if name not in options}
        result.stt.update(kept)
        if kept:
            written = ", ".join(f"{name} = {toml_value(value)}" for name, value in kept.items())
            result.notes.append(f"Deepgram's live defaults written out (this backend's differ): {written}")
    try:
        DeepgramSTTSettings(**result.stt)
    except ConfigError as error:
        if "utterance_end_ms" not in result.stt:
            raise
        value = result.stt.pop("utterance_end_ms")
        result.unmapped.append(Unmapped("utterance_end_ms", value, f"{error.message}; turn on interim_results"))


def _take(result: _Result, name: str, value: Any, field: str) -> None:
    """Convert and validate one listen option alone; a refused value is listed with the validator's reason."""
    try:
        converted = LISTEN_FIELDS[field](name, value)
        alone = {"interim_results": True, field: converted} if field == "utterance_end_ms" else {field: converted}
        DeepgramSTTSettings(**alone)
    except ConfigError as error:
        result.unmapped.append(Unmapped(name, value, error.message))
        return
    result.stt[field] = list(converted) if field == "keyterm" else converted


def _stt_audio(options: Mapping[str, Any], result: _Result) -> None:
    """``encoding`` + ``sample_rate`` (+ ``channels``) become the format the caller declares for its streams."""
    encoding, rate, channels = options.get("encoding"), options.get("sample_rate"), options.get("channels", 1)
    try:
        channel_count = as_int("channels", channels)
    except ConfigError as error:
        result.unmapped.append(Unmapped("channels", channels, error.message))
        channel_count = 1
    if channel_count != 1:
        result.unmapped.append(Unmapped("channels", channels, NO_EQUIVALENT["multichannel"]))
    if encoding is None:
        if rate is not None:
            result.unmapped.append(
                Unmapped("sample_rate", rate, "sample_rate goes with encoding; containers (wav, ...) carry their rate")
            )
        return
    if encoding not in STT_ENCODINGS:
        reason = (
            f"encoding {encoding!r} is not streamed by this backend (accepted: {', '.join(STT_ENCODINGS)}): decode it "
            "to PCM first (speechbridge.audio.decode reads wav, flac, ogg/opus, mp3)"
        )
        result.unmapped.append(Unmapped("encoding", encoding, reason))
        return
    if rate is None:
        result.unmapped.append(
            Unmapped("encoding", encoding, f"Deepgram needs sample_rate with encoding={encoding}; so does speechbridge")
        )
        return
    try:
        sample_rate = as_int("sample_rate", rate)
    except ConfigError as error:
        result.unmapped.append(Unmapped("sample_rate", rate, error.message))
        return
    short = {"linear16": "pcm"}.get(encoding, encoding)
    result.audio["stt"] = f"{short}_{sample_rate}"


def _speak(options: Mapping[str, Any], result: _Result) -> None:
    for name, value in options.items():
        if name == "model":
            _speak_option(result, name, value, "voice")
        elif name == "speed":
            _speak_option(result, name, value, "speed")
        elif name not in ("encoding", "sample_rate", "container"):
            result.unmapped.append(_unmapped(name, value, "speak"))
    params = {name: str(options[name]) for name in ("encoding", "sample_rate", "container") if name in options}
    try:
        result.audio["tts"] = str(speak_format(params, websocket=False))
    except AudioFormatError as error:
        for name, value in params.items():
            result.unmapped.append(Unmapped(name, value, error.message))


def _speak_option(result: _Result, name: str, value: Any, field: str) -> None:
    try:
        DeepgramTTSSettings(**{field: value})
    except (ConfigError, TypeError) as error:
        result.unmapped.append(Unmapped(name, value, getattr(error, "message", str(error))))
        return
    result.tts[field] = value


def _unmapped(name: str, value: Any, kind: str) -> Unmapped:
    if name == "keywords":
        reason = "keyword boosting (nova-2 and older) is not sent by this backend: on nova-3 use keyterm = [...]"
        return Unmapped(name, value, reason)
    reason = NO_EQUIVALENT.get(name, f"not a Deepgram {kind} option this migration knows")
    return Unmapped(name, value, reason)


def _gradium_note(config: Mapping[str, Mapping[str, Any]]) -> str:
    """The settings that move this code to Gradium, as TOML, with what changes in behaviour."""
    tables: dict[str, dict[str, Any]] = {}
    lines = ["To switch this code to Gradium, use these tables instead of the deepgram ones:"]
    if "stt" in config:
        stt: dict[str, Any] = {"provider": "gradium"}
        language = str(config["stt"].get("language", ""))
        base = language.split("-")[0]
        if base in GRADIUM_LANGUAGES:
            stt["language"] = base
        elif language:
            lines.append(f"- language {language!r}: Gradium recognises {', '.join(GRADIUM_LANGUAGES)} only")
        endpointing = config["stt"].get("endpointing")
        if isinstance(endpointing, int) and not isinstance(endpointing, bool):
            silence_ms: int = endpointing
            frames = min(GRADIUM_DELAYS_IN_FRAMES, key=lambda each: abs(each * GRADIUM_FRAME_MS - silence_ms))
            stt["delay_in_frames"] = frames
            lines.append(
                f"- delay_in_frames = {frames} ({frames * GRADIUM_FRAME_MS} ms) is the nearest to endpointing = "
                f"{endpointing} ms, roughly: it is how much audio Gradium hears after a word before the word "
                "is final (more is more accurate, less is faster); turns end on Gradium's semantic VAD (TurnEnded), "
                "not after a silence, so endpointing and utterance_end_ms have no counterpart"
            )
        lines.append("- Finalize is stream.flush() on both; Gradium has no keyterm, smart_format or punctuate switch")
        tables["stt"] = stt
    if "tts" in config:
        tables["tts"] = {"provider": "gradium"}
        lines.append("- Deepgram's Aura voices do not exist on Gradium: pick one from `speechbridge voices`")
    tables["providers.gradium"] = {"api_key_env": "GRADIUM_API_KEY"}
    lines.append(
        "- audio: write pcm_<rate> (e.g. pcm_16000), never bare pcm: Gradium reads bare pcm as 24 kHz input and "
        "speaks it at 48 kHz; mulaw_8000 telephony audio works both ways"
    )
    return "\n".join([*lines, "", write_toml(tables).rstrip()])
