"""How a provider rides out failures: retries of requests, reconnects of live streams, dead-peer detection.

Every provider takes one :class:`Reliability` (``GradiumSTT(reliability=Reliability(retries=5))``, or a
``reliability`` table in ``speechbridge.toml``); the shared transports and base streams apply it, so every backend
behaves the same. :func:`is_retryable` is the one rule of which errors are worth another try.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ConfigError, SpeechBridgeError

__all__ = ["Reliability", "is_retryable"]


def _at_least(low: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigError(f"{attribute.name} must be a number >= {low:g}, not {value!r}")

    return check


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{attribute.name} must be a whole number >= 0, not {value!r}")


@attrs.frozen
class Reliability:
    """Retry, reconnect and timeout policy.

    - ``retries``: further tries of a REST request after a retryable failure (0: never retry). A 429 waits its
      ``Retry-After``; other failures back off exponentially, with jitter. A stream's first connection is not
      retried: its failure reaches the caller (or a ``FallbackSTT``) at once.
    - ``reconnects``: how many times in a row a live stream may reconnect after its connection drops; audio not yet
      covered by a final transcript is replayed, so no word is lost. Past the budget the stream fails with the error.
    - ``backoff_s`` / ``max_backoff_s``: the first delay, doubled each attempt up to the cap.
    - ``dead_peer_timeout_s``: a connection that answers nothing (not even a WebSocket ping) for this long is dead.
    - ``replay_limit_s``: the most audio a live stream keeps for replay; older audio is released (and reported by
      ``Reconnected.lost_s`` if a reconnect ever needs it).
    """

    retries: int = attrs.field(default=3, validator=_count)
    reconnects: int = attrs.field(default=5, validator=_count)
    backoff_s: float = attrs.field(default=0.25, validator=_at_least(0))
    max_backoff_s: float = attrs.field(default=8.0, validator=_at_least(0))
    dead_peer_timeout_s: float = attrs.field(default=10.0, validator=_at_least(0.01))
    replay_limit_s: float = attrs.field(default=120.0, validator=_at_least(0))

    @classmethod
    def from_options(cls, options: Any, *, where: str = "reliability") -> Reliability:
        """A policy from a mapping (a TOML table), naming any unknown key and the accepted ones."""
        if isinstance(options, Reliability):
            return options
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where} must be a table of options, not {options!r}")
        names = tuple(field.name for field in attrs.fields(cls))
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ConfigError(f"{where} has unknown option {unknown[0]!r}", allowed=names)
        try:
            return cls(**options)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error.message}") from None

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait before try number ``attempt`` (1 for the first retry): the server's ``retry_after`` when
        it gave one, else ``backoff_s * 2**(attempt-1)`` capped at ``max_backoff_s``, with "equal jitter" (between
        half and all of it) so that many clients do not retry in step."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0 ** min(attempt - 1, 64))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def is_retryable(error: BaseException) -> bool:
    """Whether another try may succeed: rate limits, dropped or failed connections and server-side faults.

    Authentication, validation, configuration and audio errors never are: the same request fails the same way.
    """
    return isinstance(error, SpeechBridgeError) and error.retryable
