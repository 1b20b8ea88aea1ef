"""Reading vendor messages safely: what every backend's sans-IO ``protocol.py`` needs to turn hostile or malformed
input into :class:`~speechbridge.errors.ProtocolError` instead of a ``KeyError`` deep inside.

- :func:`parse_json`: JSON text to a value; not JSON or nested too deeply is a ``ProtocolError``. It parses with
  orjson when installed (``speechbridge[fast]``; several times faster, and it also refuses ``NaN``/``Infinity``),
  else with the standard library.
- :func:`finite`: a finite number as a float (never a ``bool``), or None.
- :func:`decode_base64`: a base64 field to bytes, or a ``ProtocolError`` naming the field.
- :func:`shown`: a value's ``repr`` cut to a readable length, for error messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any, Final

from .errors import ProtocolError

_loads: Callable[[str | bytes], Any]
try:
    import orjson

    _loads = orjson.loads
except ImportError:  # without the fast extra
    _loads = json.loads

__all__ = ["SHOWN_CHARS", "decode_base64", "finite", "parse_json", "shown"]

SHOWN_CHARS: Final = 80


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`SHOWN_CHARS` characters for an error message."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def parse_json(frame: str | bytes, *, provider: str) -> Any:
    """The JSON value of ``frame``; not JSON, or nested deeper than Python can parse, is a ``ProtocolError``."""
    try:
        return _loads(frame)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON message: {exc}", provider=provider) from None
    except RecursionError:
        raise ProtocolError("a JSON message is nested too deeply", provider=provider) from None


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def decode_base64(text: Any, name: str, *, provider: str) -> bytes:
    """The bytes of the base64 field ``name``; anything but a valid base64 string is a ``ProtocolError``."""
    if not isinstance(text, str):
        raise ProtocolError(f"{name!r} must be a base64 string", provider=provider)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{name!r} is not valid base64", provider=provider) from None
