"""The options of the Cartesia backend, validated before anything is sent.

Cartesia's own spellings are accepted as aliases: ``model_id``, ``voice_id`` and ``voice.id``,
``output_format.encoding`` and ``output_format.sample_rate`` (the audio asked of Cartesia; the caller's ``format`` is
converted from it), ``generation_config.speed`` / ``volume`` / ``emotion``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

import attrs

from speechbridge.errors import ConfigError
from speechbridge.settings import between, one_of

from .protocol import API_URL, API_VERSION, TTS_ENCODINGS, TTS_SAMPLE_RATES

__all__ = ["DEFAULT_VOICE_ID", "STT_MODELS", "CartesiaSTTSettings", "CartesiaTTSSettings"]

DEFAULT_VOICE_ID: Final = "a0e99841-438c-4a64-b679-ae501e7d6091"  # from Cartesia's API reference examples
STT_MODELS: Final = ("ink-whisper", "ink-whisper-2025-06-04")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MODEL = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


def _base_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must be an http:// or https:// URL such as {API_URL}, not {value!r}")


def _matching(pattern: re.Pattern[str], example: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and attribute.default is None:
            return
        if not isinstance(value, str) or not pattern.match(value):
            raise ConfigError(f"{attribute.name}={value!r} is not accepted (accepted: a value like {example!r})")

    return check


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{attribute.name} must be a non-empty string, not {value!r}")


@attrs.frozen
class _Connection:
    """Where and how to connect: Cartesia, or any ``base_url`` (a local or self-hosted server)."""

    base_url: str = attrs.field(default=API_URL, validator=_base_url, kw_only=True)
    version: str = attrs.field(default=API_VERSION, validator=_matching(_VERSION, API_VERSION), kw_only=True)
    timeout_s: float = attrs.field(default=10.0, validator=between(0.1, 300), kw_only=True)

    @property
    def api_url(self) -> str:
        """The REST base, e.g. ``https://api.cartesia.ai`` (no trailing slash)."""
        return self.base_url.rstrip("/")

    @property
    def ws_url(self) -> str:
        """The WebSocket base matching :attr:`api_url`."""
        return "ws" + self.api_url.removeprefix("http")


@attrs.frozen
class CartesiaSTTSettings(_Connection):
    """Recognition settings.

    ``max_silence_duration_secs`` and ``min_volume`` are Cartesia's own end-of-utterance knobs (ink-whisper). With
    ``turn_detection``, a final transcript Cartesia sends on its own (not answering a ``finalize``) ends the turn.
    """

    ALIASES: ClassVar = {"model_id": "model"}

    model: str = attrs.field(default="ink-whisper", validator=one_of(*STT_MODELS))
    language: str = attrs.field(default="en", validator=_matching(_LANGUAGE, "en"))
    word_timestamps: bool = attrs.field(default=True, validator=one_of(True, False))
    min_volume: float | None = attrs.field(default=None, validator=between(0.0, 1.0))
    max_silence_duration_secs: float | None = attrs.field(default=None, validator=between(0.1, 30.0))
    turn_detection: bool = attrs.field(default=True, validator=one_of(True, False))

    def stream_query(self) -> dict[str, str]:
        """The query of the STT socket besides the audio format."""
        query = {"model": self.model, "language": self.language}
        if self.min_volume is not None:
            query["min_volume"] = str(self.min_volume)
        if self.max_silence_duration_secs is not None:
            query["max_silence_duration_secs"] = str(self.max_silence_duration_secs)
        return query


@attrs.frozen
class CartesiaTTSSettings(_Connection):
    """Voice and generation settings.

    ``encoding`` / ``sample_rate`` choose the raw audio asked of Cartesia (default: the closest to the requested
    format); ``speed``, ``volume`` and ``emotion`` are ``generation_config`` (sonic-3). ``word_timestamps`` asks
    for ``add_timestamps`` (synthesis then reads ``/tts/sse`` instead of ``/tts/bytes``). ``multiplex`` runs the
    provider's streams as contexts of one shared socket.
    """

    ALIASES: ClassVar = {
        "model_id": "model",
        "voice_id": "voice",
        "voice.id": "voice",
        "output_format.encoding": "encoding",
        "output_format.sample_rate": "sample_rate",
        "generation_config.speed": "speed",
        "generation_config.volume": "volume",
        "generation_config.emotion": "emotion",
        "add_timestamps": "word_timestamps",
    }

    model: str = attrs.field(default="sonic-3", validator=_matching(_MODEL, "sonic-3"))
    voice: str = attrs.field(default=DEFAULT_VOICE_ID, validator=_optional_text)
    language: str | None = attrs.field(default=None, validator=_matching(_LANGUAGE, "en"))
    encoding: str | None = attrs.field(default=None, validator=one_of(*TTS_ENCODINGS))
    sample_rate: int | None = attrs.field(default=None, validator=one_of(*TTS_SAMPLE_RATES))
    speed: float | None = attrs.field(default=None, validator=between(0.6, 1.5))
    volume: float | None = attrs.field(default=None, validator=between(0.5, 2.0))
    emotion: str | None = attrs.field(default=None, validator=_optional_text)
    max_buffer_delay_ms: int | None = attrs.field(default=None, validator=between(0, 5000))
    word_timestamps: bool = attrs.field(default=True, validator=one_of(True, False))
    multiplex: bool = attrs.field(default=False, validator=one_of(True, False))

    def generation_config(self) -> dict[str, Any] | None:
        """``generation_config`` with only the settings given, or None."""
        values = {"speed": self.speed, "volume": self.volume, "emotion": self.emotion}
        config = {key: value for key, value in values.items() if value is not None}
        return config or None
