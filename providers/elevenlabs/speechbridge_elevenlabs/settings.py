"""The options of the ElevenLabs backend, validated before anything is sent.

Common names (``model``, ``language``, ``voice``, ``speed``) are what speechbridge calls them everywhere; ElevenLabs'
own spellings (``model_id``, ``language_code``, ``voice_id``) are accepted as aliases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import attrs

from speechbridge.errors import ConfigError, UnsupportedFeature
from speechbridge.settings import between, one_of

from .protocol import API_HOSTS, OUTPUT_FORMATS, PROVIDER, REALTIME_MODELS, STT_MODELS

__all__ = ["DEFAULT_VOICE_ID", "VOICE_SETTING_RANGES", "ElevenLabsSTTSettings", "ElevenLabsTTSSettings"]

DEFAULT_VOICE_ID: Final = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", ElevenLabs' long-standing default voice
VOICE_SETTING_RANGES: Final = {"stability": (0.0, 1.0), "similarity_boost": (0.0, 1.0), "style": (0.0, 1.0),
                               "speed": (0.7, 1.2)}  # fmt: skip
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
BATCH_ONLY: Final = ("tag_audio_events", "diarize", "num_speakers", "temperature", "seed")
STREAM_ONLY: Final = (
    "vad_silence_threshold_secs",
    "vad_threshold",
    "min_speech_duration_ms",
    "min_silence_duration_ms",
)
SOCKET_ONLY: Final = ("chunk_length_schedule", "auto_mode", "inactivity_timeout")


def _base_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"base_url must be an http:// or https:// URL such as https://api.elevenlabs.io, not {value!r}"
        )


def _text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{attribute.name} must be a non-empty string, not {value!r}")


def _language(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not _LANGUAGE.match(value)):
        raise ConfigError(f"{attribute.name} must be an ISO-639-1 or -3 code such as 'en' or 'eng', not {value!r}")


def _optional_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be True or False, not {value!r}")


def _whole(low: int, high: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{attribute.name} must be a whole number from {low} to {high}, not {value!r}")

    return check


def _keyterms(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(term, str) and term.strip() for term in value):
        raise ConfigError(f"keyterms must be a list of non-empty strings, not {value!r}")
    return tuple(value)


@attrs.frozen
class _Connection:
    """Where to connect: a residency ``region``, or any ``base_url`` without ``/v1`` (a local or self-hosted server)."""

    region: str = attrs.field(default="default", validator=one_of(*API_HOSTS), kw_only=True)
    base_url: str | None = attrs.field(default=None, validator=_base_url, kw_only=True)
    timeout_s: float = attrs.field(default=30.0, validator=between(0.1, 600), kw_only=True)
    enable_logging: bool | None = attrs.field(default=None, validator=_optional_bool, kw_only=True)

    @property
    def api_url(self) -> str:
        """The REST base, e.g. ``https://api.elevenlabs.io`` (no trailing slash, no ``/v1``)."""
        return (self.base_url or API_HOSTS[self.region]).rstrip("/").removesuffix("/v1")

    @property
    def ws_url(self) -> str:
        return "ws" + self.api_url.removeprefix("http")

    def logging_query(self) -> dict[str, str]:
        return {} if self.enable_logging is None else {"enable_logging": str(self.enable_logging).lower()}


@attrs.frozen
class ElevenLabsSTTSettings(_Connection):
    """Scribe options. ``model`` is the batch model, ``realtime_model`` the streaming one.

    ``commit_strategy="vad"`` (the default) lets ElevenLabs commit a segment after ``vad_silence_threshold_secs`` of
    silence: each such commit ends a turn (``TurnEnded``). With ``"manual"`` only ``flush()`` and ``end()`` commit.
    """

    ALIASES: ClassVar = {"model_id": "model", "language_code": "language"}

    model: str = attrs.field(default="scribe_v1", validator=one_of(*STT_MODELS))
    realtime_model: str = attrs.field(default="scribe_v2_realtime", validator=one_of(*REALTIME_MODELS))
    language: str | None = attrs.field(default=None, validator=_language)
    commit_strategy: str = attrs.field(default="vad", validator=one_of("vad", "manual"))
    vad_silence_threshold_secs: float | None = attrs.field(default=None, validator=between(0.3, 3.0))
    vad_threshold: float | None = attrs.field(default=None, validator=between(0.1, 0.9))
    min_speech_duration_ms: int | None = attrs.field(default=None, validator=_whole(50, 2000))
    min_silence_duration_ms: int | None = attrs.field(default=None, validator=_whole(50, 2000))
    interim_results: bool = attrs.field(default=True, validator=one_of(True, False))
    keyterms: tuple[str, ...] = attrs.field(default=(), converter=_keyterms)
    tag_audio_events: bool | None = attrs.field(default=None, validator=_optional_bool)
    diarize: bool | None = attrs.field(default=None, validator=_optional_bool)
    num_speakers: int | None = attrs.field(default=None, validator=_whole(1, 32))
    no_verbatim: bool | None = attrs.field(default=None, validator=_optional_bool)
    temperature: float | None = attrs.field(default=None, validator=between(0.0, 2.0))
    seed: int | None = attrs.field(default=None, validator=_whole(0, 2**31 - 1))

    def _refuse(self, names: tuple[str, ...], where: str) -> None:
        given = [name for name in names if getattr(self, name) is not None]
        if given:
            raise UnsupportedFeature(f"{', '.join(given)} cannot be honoured by {where}", provider=PROVIDER)

    def batch_form(self) -> dict[str, str]:
        """The multipart form fields of ``POST /v1/speech-to-text`` (word timestamps always)."""
        self._refuse(STREAM_ONLY, "batch transcription (they are realtime Scribe options)")
        values: dict[str, Any] = {
            "model_id": self.model,
            "language_code": self.language,
            "timestamps_granularity": "word",
            "tag_audio_events": self.tag_audio_events,
            "diarize": self.diarize,
            "num_speakers": self.num_speakers,
            "no_verbatim": self.no_verbatim,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        return {key: _form_value(value) for key, value in values.items() if value is not None}

    def realtime_query(self, audio_format: str) -> list[tuple[str, str]]:
        """The query of ``/v1/speech-to-text/realtime`` (``keyterms`` repeated)."""
        self._refuse(BATCH_ONLY, "a realtime Scribe stream (they are batch options)")
        if len(self.keyterms) > 50:
            raise ConfigError(f"realtime STT takes at most 50 keyterms, not {len(self.keyterms)}")
        values: dict[str, Any] = {
            "model_id": self.realtime_model,
            "audio_format": audio_format,
            "commit_strategy": self.commit_strategy,
            "include_timestamps": True,
            "language_code": self.language,
            "vad_silence_threshold_secs": self.vad_silence_threshold_secs,
            "vad_threshold": self.vad_threshold,
            "min_speech_duration_ms": self.min_speech_duration_ms,
            "min_silence_duration_ms": self.min_silence_duration_ms,
            "no_verbatim": self.no_verbatim,
            **self.logging_query(),
        }
        query = [(key, _form_value(value)) for key, value in values.items() if value is not None]
        return query + [("keyterms", term) for term in self.keyterms]


def _form_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _voice_settings(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"voice_settings must be a mapping such as {{'stability': 0.5}}, not {value!r}")
    allowed = (*VOICE_SETTING_RANGES, "use_speaker_boost")
    for key, item in value.items():
        if key not in allowed:
            raise ConfigError(f"unknown voice_settings key {key!r}", allowed=allowed)
        if key == "use_speaker_boost":
            if not isinstance(item, bool):
                raise ConfigError(f"voice_settings.use_speaker_boost must be True or False, not {item!r}")
            continue
        low, high = VOICE_SETTING_RANGES[key]
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not low <= item <= high:
            raise ConfigError(f"voice_settings.{key}={item!r} is out of range (accepted: {low} to {high})")
    return dict(value)


@attrs.frozen
class ElevenLabsTTSSettings(_Connection):
    """Voice, model and ``voice_settings``; ``speed`` is ``voice_settings.speed`` (0.7 to 1.2).

    ``output_format`` (an ElevenLabs string such as ``mp3_44100_128`` or ``pcm_22050``) fixes what is asked of
    ElevenLabs; by default the backend asks for the format wanted when ElevenLabs makes it, else 16-bit PCM, and
    converts. ``multiplex=True`` runs streams as contexts of shared ``multi-stream-input`` sockets (at most 5 each).
    """

    ALIASES: ClassVar = {"voice_id": "voice", "model_id": "model", "language_code": "language"}

    voice: str = attrs.field(default=DEFAULT_VOICE_ID, validator=_text)
    model: str = attrs.field(default="eleven_flash_v2_5", validator=_text)
    language: str | None = attrs.field(default=None, validator=_language)
    voice_settings: dict[str, Any] | None = attrs.field(default=None, converter=_voice_settings)
    speed: float | None = attrs.field(default=None, validator=between(*VOICE_SETTING_RANGES["speed"]))
    output_format: str | None = attrs.field(default=None, validator=one_of(*OUTPUT_FORMATS))
    seed: int | None = attrs.field(default=None, validator=_whole(0, 4294967295))
    apply_text_normalization: str | None = attrs.field(default=None, validator=one_of("auto", "on", "off"))
    chunk_length_schedule: tuple[int, ...] | None = attrs.field(default=None)
    auto_mode: bool | None = attrs.field(default=None, validator=_optional_bool)
    inactivity_timeout: int | None = attrs.field(default=None, validator=_whole(1, 180))
    word_timestamps: bool = attrs.field(default=True, validator=one_of(True, False))
    multiplex: bool = attrs.field(default=False, validator=one_of(True, False))

    @chunk_length_schedule.validator
    def _check_schedule(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if (
            not isinstance(value, (list, tuple))
            or not value
            or not all(isinstance(n, int) and not isinstance(n, bool) and 50 <= n <= 500 for n in value)
        ):
            raise ConfigError(f"chunk_length_schedule must be a list of whole numbers from 50 to 500, not {value!r}")

    def effective_voice_settings(self) -> dict[str, Any] | None:
        """``voice_settings`` with ``speed`` folded in."""
        merged = dict(self.voice_settings or {})
        if self.speed is not None:
            merged["speed"] = self.speed
        return merged or None

    def rest_body(self, text: str) -> dict[str, Any]:
        """The JSON body of ``POST /v1/text-to-speech/{voice_id}``."""
        given = [name for name in SOCKET_ONLY if getattr(self, name) is not None]
        if given:
            raise UnsupportedFeature(
                f"{', '.join(given)} cannot be honoured by one-shot synthesis (they are socket options)",
                provider=PROVIDER,
            )
        values = {
            "text": text,
            "model_id": self.model,
            "language_code": self.language,
            "voice_settings": self.effective_voice_settings(),
            "seed": self.seed,
            "apply_text_normalization": self.apply_text_normalization,
        }
        return {key: value for key, value in values.items() if value is not None}

    def socket_query(self, output_format: str) -> dict[str, str]:
        """The query of the TTS sockets."""
        values: dict[str, Any] = {
            "model_id": self.model,
            "output_format": output_format,
            "language_code": self.language,
            "sync_alignment": True if self.word_timestamps else None,
            "auto_mode": self.auto_mode,
            "inactivity_timeout": self.inactivity_timeout,
            "apply_text_normalization": self.apply_text_normalization,
            "seed": self.seed,
            **self.logging_query(),
        }
        return {key: _form_value(value) for key, value in values.items() if value is not None}
