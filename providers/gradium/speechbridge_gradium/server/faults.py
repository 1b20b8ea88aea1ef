"""Faults a Gradium front can inject, so clients' reliability (retries, reconnects, timeouts) can be tested."""

from __future__ import annotations

from typing import Any

import attrs

from speechbridge.errors import ConfigError

__all__ = ["Faults"]


def _count_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"{attribute.name} must be a whole number from 0 up or None, not {value!r}")


def _close_code_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value <= 4999):
        raise ConfigError(f"{attribute.name} must be a WebSocket close code from 1000 to 4999, not {value!r}")


def _delay(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 60:
        raise ConfigError(f"{attribute.name} must be a number of seconds from 0 to 60, not {value!r}")


@attrs.frozen
class Faults:
    """What goes wrong, on every connection or only the first ``connections`` of them.

    A "message" is a WebSocket frame or an NDJSON line the server sends (``ready`` included).

    - ``drop_after``: after this many messages the connection is cut without a close frame (a WebSocket client
      sees 1006; a REST client sees the body end early).
    - ``error_after`` with ``error_code``: after this many messages an ``error`` frame with ``error_code`` is sent,
      then the socket is closed with that code (REST: an ``error`` line ends the stream).
    - ``reject_setup``: every setup is answered with an ``error`` of this code and the close (REST: HTTP 500
      ``error from server <code>: ...``).
    - ``delay_s``: a pause before every message (a slow server).
    """

    drop_after: int | None = attrs.field(default=None, validator=_count_or_none, kw_only=True)
    error_after: int | None = attrs.field(default=None, validator=_count_or_none, kw_only=True)
    error_code: int = attrs.field(default=1011, validator=_close_code_or_none, kw_only=True)
    error_message: str = attrs.field(default="injected fault: internal server error", kw_only=True)
    reject_setup: int | None = attrs.field(default=None, validator=_close_code_or_none, kw_only=True)
    delay_s: float = attrs.field(default=0.0, validator=_delay, kw_only=True)
    connections: int | None = attrs.field(default=None, validator=_count_or_none, kw_only=True)
