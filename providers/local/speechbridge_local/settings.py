"""The options of the local backend."""

from __future__ import annotations

from functools import cache
from typing import Any

import attrs

from speechbridge.errors import ConfigError
from speechbridge.settings import between, one_of

__all__ = ["LocalSTTSettings", "LocalTTSSettings", "offline_voices"]

DEFAULT_VOICE = "heart"


@attrs.frozen
class LocalSTTSettings:
    """pocketsphinx recognition with webrtcvad voice activity and a silence end of turn.

    ``dither`` is the RMS, in 16-bit steps, of the faint noise added before decoding: pocketsphinx goes astray on
    digital silence. 0 turns it off; the noise is seeded, so results repeat. ``end_of_turn``: ``silence`` ends a
    stream's turn after ``silence_ms`` of silence; ``smart-turn`` also asks the Smart Turn model
    (:mod:`.smart_turn`) at the first silent frame after speech, and ends the turn there when it judges the turn
    finished, or after ``silence_ms`` when it does not.
    """

    language: str = attrs.field(default="en", validator=one_of("en"))
    interim_results: bool = attrs.field(default=True, validator=one_of(True, False))
    vad_aggressiveness: int = attrs.field(default=2, validator=one_of(0, 1, 2, 3))
    silence_ms: float = attrs.field(default=800, validator=between(200, 10_000))
    dither: float = attrs.field(default=30, validator=between(0, 1000))
    end_of_turn: str = attrs.field(default="silence", validator=one_of("silence", "smart-turn"))


@cache
def offline_voices() -> tuple[str, ...]:
    """The hibari voices that ship inside the package (the others would need a download)."""
    from hibari.voices import VOICES  # type: ignore[import-untyped]

    return tuple(name for name, voice in VOICES.items() if voice.get("bundled"))


def _offline_voice(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in offline_voices():
        raise ConfigError(
            f"voice {value!r} is not available offline (hibari's other voices need a download)",
            allowed=offline_voices(),
        )


def _seed(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"seed must be a whole number from 0 up, not {value!r}")


@attrs.frozen
class LocalTTSSettings:
    """hibari synthesis; the same text, speed and seed always give the same audio."""

    voice: str = attrs.field(default=DEFAULT_VOICE, validator=_offline_voice)
    speed: float = attrs.field(default=1.0, validator=between(0.5, 2.0))
    seed: int = attrs.field(default=0, validator=_seed)
