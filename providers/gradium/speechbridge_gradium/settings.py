"""The options of the Gradium backend, validated before anything is sent."""

from __future__ import annotations

from typing import Any, ClassVar, Final

import attrs

from speechbridge.errors import ConfigError
from speechbridge.settings import between, one_of

from .protocol import API_HOSTS, DELAYS_IN_FRAMES, LANGUAGES

__all__ = ["DEFAULT_VOICE_ID", "GradiumSTTSettings", "GradiumTTSSettings"]

DEFAULT_VOICE_ID: Final = "YTpq7expH9539ERJ"  # Emma, en-US, from Gradium's catalogue


def _base_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"base_url must be an http:// or https:// URL such as https://api.gradium.ai/api, not {value!r}"
        )


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{attribute.name} must be a non-empty string, not {value!r}")


@attrs.frozen
class _Connection:
    """Where and how to connect: a region's host, or any ``base_url`` (a self-hosted or local server)."""

    region: str = attrs.field(default="default", validator=one_of(*API_HOSTS), kw_only=True)
    base_url: str | None = attrs.field(default=None, validator=_base_url, kw_only=True)
    model: str = attrs.field(default="default", validator=_optional_text, kw_only=True)
    multiplex: bool = attrs.field(default=False, validator=one_of(True, False), kw_only=True)
    timeout_s: float = attrs.field(default=10.0, validator=between(0.1, 300), kw_only=True)

    @property
    def api_url(self) -> str:
        """The REST base, e.g. ``https://api.gradium.ai/api`` (no trailing slash)."""
        return (self.base_url or API_HOSTS[self.region]).rstrip("/")

    @property
    def ws_url(self) -> str:
        """The WebSocket base matching :attr:`api_url`."""
        return "ws" + self.api_url.removeprefix("http")


@attrs.frozen
class GradiumSTTSettings(_Connection):
    """Recognition settings (``json_config``) and the semantic-VAD end-of-turn policy.

    A turn ends when the inactivity probability at ``turn_horizon_s`` stays at or above ``turn_threshold`` for
    ``turn_steps`` consecutive 80 ms steps after some text; VAD is ignored for ``turn_cooldown_s`` after a flush.
    """

    ALIASES: ClassVar = {"delay_in_tokens": "delay_in_frames", "model_name": "model"}

    language: str | None = attrs.field(default=None, validator=one_of(*LANGUAGES))
    delay_in_frames: int | None = attrs.field(default=None, validator=one_of(*DELAYS_IN_FRAMES))
    temp: float | None = attrs.field(default=None, validator=between(0.0, 1.0))
    padding_bonus: float | None = attrs.field(default=None, validator=between(-4.0, 4.0))
    turn_detection: bool = attrs.field(default=True, validator=one_of(True, False))
    turn_horizon_s: float = attrs.field(default=2.0, validator=between(0.5, 3.0))
    turn_threshold: float = attrs.field(default=0.5, validator=between(0.0, 1.0))
    turn_steps: int = attrs.field(default=1, validator=one_of(*range(1, 26)))
    turn_cooldown_s: float = attrs.field(default=0.64, validator=between(0.0, 5.0))
    wait_for_ready: bool = attrs.field(default=True, validator=one_of(True, False))

    def json_config(self) -> dict[str, Any]:
        """The ``json_config`` to send: only the settings given, so the server's defaults apply to the rest."""
        values = {
            "language": self.language,
            "delay_in_frames": self.delay_in_frames,
            "temp": self.temp,
            "padding_bonus": self.padding_bonus,
        }
        return {key: value for key, value in values.items() if value is not None}


@attrs.frozen
class GradiumTTSSettings(_Connection):
    """Voice settings (``json_config``): ``padding_bonus`` is the speed knob (negative is faster).

    ``word_timestamps`` asks for word timings: one-shot synthesis then reads Gradium's NDJSON answer instead of raw
    audio, and streams emit ``WordTiming`` events.
    """

    ALIASES: ClassVar = {"voice_id": "voice", "model_name": "model"}

    voice: str = attrs.field(default=DEFAULT_VOICE_ID, validator=_optional_text)
    temp: float | None = attrs.field(default=None, validator=between(0.0, 1.4))
    cfg_coef: float | None = attrs.field(default=None, validator=between(1.0, 4.0))
    padding_bonus: float | None = attrs.field(default=None, validator=between(-4.0, 4.0))
    rewrite_rules: str | None = attrs.field(default=None, validator=_optional_text)
    pronunciation_id: str | None = attrs.field(default=None, validator=_optional_text)
    word_timestamps: bool = attrs.field(default=True, validator=one_of(True, False))

    def json_config(self) -> dict[str, Any]:
        """The ``json_config`` to send (``pronunciation_id`` travels beside it, at the top level of the setup)."""
        values = {
            "temp": self.temp,
            "cfg_coef": self.cfg_coef,
            "padding_bonus": self.padding_bonus,
            "rewrite_rules": self.rewrite_rules,
        }
        return {key: value for key, value in values.items() if value is not None}
