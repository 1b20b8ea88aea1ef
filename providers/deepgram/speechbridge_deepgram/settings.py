"""The options of the Deepgram backend, under Deepgram's own names, validated before anything is sent."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

import attrs

from speechbridge.errors import ConfigError
from speechbridge.settings import between, one_of

from .protocol import STT_ENCODINGS, TTS_SAMPLE_RATES, query_value

__all__ = ["DEFAULT_VOICE", "VOICE_PATTERN", "DeepgramSTTSettings", "DeepgramTTSSettings"]

DEFAULT_VOICE: Final = "aura-2-thalia-en"
VOICE_PATTERN: Final = re.compile(r"aura(-2)?-[a-z]+-[a-z]{2}")
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*|multi")
_STT_RATES: Final = tuple(
    sorted({rate for rates in TTS_SAMPLE_RATES.values() for rate in rates} | {11025, 22050, 44100})
)


def _base_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.startswith(("http://", "https://"))):
        raise ConfigError(
            f"base_url must be an http:// or https:// URL such as https://api.deepgram.com, not {value!r}"
        )


def _text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{attribute.name} must be a non-empty string, not {value!r}")


def _language(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not _LANGUAGE.fullmatch(value)):
        raise ConfigError(f"language must be a BCP-47 code such as 'en' or 'en-US', or 'multi', not {value!r}")


def _endpointing(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is False:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 10_000:
        raise ConfigError(f"endpointing is milliseconds of silence from 10 to 10000, or False, not {value!r}")


def _utterance_end_ms(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value <= 5000:
        raise ConfigError(f"utterance_end_ms is milliseconds from 1000 to 5000, not {value!r}")


def _keyterms(value: Any) -> tuple[str, ...]:
    terms = (value,) if isinstance(value, str) else value
    if not isinstance(terms, (list, tuple)) or not all(isinstance(term, str) and term.strip() for term in terms):
        raise ConfigError(f"keyterm takes a string or a list of non-empty strings, not {value!r}")
    return tuple(terms)


@attrs.frozen
class _Connection:
    """Where to connect: Deepgram, its EU host, or any ``base_url`` (a self-hosted or local server)."""

    base_url: str | None = attrs.field(default=None, validator=_base_url, kw_only=True)
    timeout_s: float = attrs.field(default=10.0, validator=between(0.1, 300), kw_only=True)

    @property
    def api_url(self) -> str:
        """The REST base without a trailing slash, e.g. ``https://api.deepgram.com``."""
        return (self.base_url or "https://api.deepgram.com").rstrip("/")

    @property
    def ws_url(self) -> str:
        return "ws" + self.api_url.removeprefix("http")


@attrs.frozen
class DeepgramSTTSettings(_Connection):
    """``/v1/listen`` query parameters.

    ``encoding`` and ``sample_rate`` choose the wire format of streamed audio (the input is converted to it); left
    unset, raw input goes as it is when Deepgram takes it, else as ``linear16`` at the input's rate. ``speech_final``
    and ``UtteranceEnd`` end turns; ``keepalive_s`` is the idle time after which a ``KeepAlive`` is sent.
    """

    ALIASES: ClassVar = {"keyterms": "keyterm", "vad": "vad_events"}

    model: str = attrs.field(default="nova-3", validator=_text)
    language: str | None = attrs.field(default=None, validator=_language)
    interim_results: bool = attrs.field(default=True, validator=one_of(True, False))
    endpointing: int | bool = attrs.field(default=300, validator=_endpointing)
    utterance_end_ms: int | None = attrs.field(default=None, validator=_utterance_end_ms)
    vad_events: bool = attrs.field(default=True, validator=one_of(True, False))
    smart_format: bool | None = attrs.field(default=None, validator=one_of(True, False))
    punctuate: bool | None = attrs.field(default=None, validator=one_of(True, False))
    keyterm: tuple[str, ...] = attrs.field(default=(), converter=_keyterms)
    encoding: str | None = attrs.field(default=None, validator=one_of(*STT_ENCODINGS))
    sample_rate: int | None = attrs.field(default=None, validator=one_of(*_STT_RATES))
    keepalive_s: float = attrs.field(default=5.0, validator=between(0.5, 9.0))

    def __attrs_post_init__(self) -> None:
        if self.utterance_end_ms is not None and not self.interim_results:
            raise ConfigError("utterance_end_ms needs interim_results=True (Deepgram's rule)")

    def query(self) -> list[tuple[str, str]]:
        """The recognition parameters shared by REST and WebSocket (only those given, plus the model)."""
        pairs: list[tuple[str, Any]] = [("model", self.model)]
        for name in ("language", "smart_format", "punctuate"):
            if getattr(self, name) is not None:
                pairs.append((name, getattr(self, name)))
        pairs += [("keyterm", term) for term in self.keyterm]
        return [(name, query_value(value)) for name, value in pairs]

    def stream_query(self) -> list[tuple[str, str]]:
        """:meth:`query` plus the live-only parameters."""
        pairs: list[tuple[str, Any]] = [
            ("interim_results", self.interim_results),
            ("endpointing", self.endpointing),
            ("vad_events", self.vad_events),
        ]
        if self.utterance_end_ms is not None:
            pairs.append(("utterance_end_ms", self.utterance_end_ms))
        return self.query() + [(name, query_value(value)) for name, value in pairs]


@attrs.frozen
class DeepgramTTSSettings(_Connection):
    """``/v1/speak`` parameters: ``voice`` is Deepgram's ``model`` (voice and model in one, e.g. aura-2-thalia-en)."""

    ALIASES: ClassVar = {"model": "voice"}

    voice: str = attrs.field(default=DEFAULT_VOICE, validator=_text)
    speed: float | None = attrs.field(default=None, validator=between(0.7, 1.5))

    def __attrs_post_init__(self) -> None:
        if not VOICE_PATTERN.fullmatch(self.voice):
            raise ConfigError(
                f"voice {self.voice!r} is not a Deepgram Aura voice (accepted: names like aura-2-thalia-en, "
                "aura-asteria-en)"
            )

    def query(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, Any]] = [("model", self.voice)]
        if self.speed is not None:
            pairs.append(("speed", self.speed))
        return [(name, query_value(value)) for name, value in pairs]
