"""Typed, validated provider settings.

Each provider declares an attrs class of its options. Common options keep common names everywhere
(``language``, ``model``, ``voice``, ``sample_rate``, ``speed``); vendor spellings can be declared as aliases.
An option a provider does not know is an error that lists the ones it does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from .errors import ConfigError

__all__ = ["between", "build_settings", "one_of", "settings_fields"]

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


def build_settings(settings_cls: type[S], options: Mapping[str, Any], *, provider: str, base: S | None = None) -> S:
    """Validate ``options`` into ``settings_cls`` (on top of ``base`` when given)."""
    aliases: Mapping[str, str] = getattr(settings_cls, "ALIASES", {})
    names = settings_fields(settings_cls)
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = aliases.get(key, key)
        if name not in names:
            raise ConfigError(f"unknown option {key!r}", allowed=names, provider=provider)
        values[name] = value
    try:
        return attrs.evolve(base, **values) if base is not None else settings_cls(**values)  # type: ignore[misc]
    except ConfigError as exc:
        exc.provider = exc.provider or provider
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), provider=provider) from None
