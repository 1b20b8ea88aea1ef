"""Typed, validated provider settings.

Each provider declares an attrs class of its options. Common options keep common names everywhere
(``language``, ``model``, ``voice``, ``sample_rate``, ``speed``); vendor spellings can be declared as aliases.
An option a provider does not know is an error that lists the ones it does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from .errors import ConfigError, UnsupportedFeature

__all__ = ["COMMON_OPTIONS", "between", "build_settings", "check_option_names", "one_of", "settings_fields"]

COMMON_OPTIONS = frozenset(
    {"language", "model", "voice", "sample_rate", "speed", "interim_results", "word_timestamps", "multiplex"}
)
"""Options that mean the same on every provider that has them; one a provider lacks is an UnsupportedFeature."""

S = TypeVar("S")


def one_of(*allowed: object) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Validator: the value is one of ``allowed`` (None passes when the field defaults to None)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and attribute.default is None:
            return
        if value not in allowed:
            raise ConfigError(f"{attribute.name}={value!r} is not accepted", allowed=allowed)

    return check


def between(low: float, high: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Validator: a number from ``low`` to ``high`` inclusive (None passes when the field defaults to None)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and attribute.default is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{attribute.name} must be a number from {low} to {high}, not {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{attribute.name}={value!r} is out of range (accepted: {low} to {high})")

    return check


def settings_fields(settings_cls: type) -> tuple[str, ...]:
    """The option names a settings class accepts, in declaration order."""
    return tuple(field.name for field in attrs.fields(settings_cls))


def check_option_names(settings_cls: type, keys: Iterable[str], *, provider: str, where: str = "") -> None:
    """Refuse any of ``keys`` that ``settings_cls`` (or its ``ALIASES``) does not take, naming it and the accepted.

    A common option the provider has no equivalent of is an :class:`UnsupportedFeature`; any other a ConfigError.
    """
    names = settings_fields(settings_cls)
    accepted = set(names) | set(getattr(settings_cls, "ALIASES", {}))
    for key in keys:
        if key in accepted:
            continue
        place = f" in {where}" if where else ""
        if key in COMMON_OPTIONS:
            raise UnsupportedFeature(
                f"{provider} has no equivalent of the option {key!r}{place} (its options: {', '.join(names)})",
                provider=provider,
            )
        raise ConfigError(f"unknown option {key!r}{place}", allowed=names, provider=provider)


def build_settings(settings_cls: type[S], options: Mapping[str, Any], *, provider: str, base: S | None = None) -> S:
    """Validate ``options`` into ``settings_cls`` (on top of ``base`` when given)."""
    aliases: Mapping[str, str] = getattr(settings_cls, "ALIASES", {})
    check_option_names(settings_cls, options, provider=provider)
    values = {aliases.get(key, key): value for key, value in options.items()}
    try:
        return attrs.evolve(base, **values) if base is not None else settings_cls(**values)  # type: ignore[misc]
    except ConfigError as exc:
        exc.provider = exc.provider or provider
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), provider=provider) from None
