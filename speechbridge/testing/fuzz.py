"""Property-based fuzzing of parsers with hypothesis: hostile inputs, and the check that only typed errors come out.

A parser passes when every input either gives a value of the parser's declared return type (attrs results checked
field by field, floats finite, ``bool`` never standing in for a number) or raises a
:class:`~speechbridge.errors.SpeechBridgeError` with a short message. Anything else (``KeyError``, ``TypeError``,
``RecursionError``, ``OverflowError``...) fails the property, and hypothesis shrinks it to a small example.

Profiles: ``ci`` (the default: derandomized, no example database, :data:`CI_EXAMPLES` examples a property) and
``long`` (:data:`LONG_EXAMPLES` examples, random), chosen with ``HYPOTHESIS_PROFILE=long``. Every example must finish
within a deadline, so a parser that hangs or goes quadratic fails too. :func:`declared_body_status` checks that a
server refuses a body over its limit before reading it. Needs ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import math
import os
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ..errors import SpeechBridgeError

__all__ = [
    "CI_EXAMPLES",
    "DEEP",
    "LONG_EXAMPLES",
    "MAX_MESSAGE_CHARS",
    "check_typed",
    "conforms",
    "declared_body_status",
    "hostile_frames",
    "hostile_texts",
    "hostile_values",
    "json_objects",
    "json_values",
    "load_profile",
    "mutated",
    "typed_or_error",
]

CI_EXAMPLES: Final = 200
LONG_EXAMPLES: Final = 10_000
MAX_MESSAGE_CHARS: Final = 1000  # an error names what was wrong; it does not echo a hostile payload
DEEP: Final = 100_000  # nesting depth of the deepest hostile JSON text
_MUTATION_DEPTH: Final = 6
_DEADLINE: Final = datetime.timedelta(seconds=2)  # per example: generous on a busy machine, yet catches hangs


def load_profile() -> None:
    """Register the ``ci`` and ``long`` profiles and load the one ``HYPOTHESIS_PROFILE`` names (default ``ci``)."""
    common: dict[str, Any] = {
        "deadline": _DEADLINE,
        "database": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, print_blob=True, **common)
    settings.register_profile("long", max_examples=LONG_EXAMPLES, **common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# --- strategies -------------------------------------------------------------------------------------------------

_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
)
_EXTREMES: Final[tuple[Any, ...]] = (
    10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, -1, 0, 1e308, -1e308, 5e-324,
    math.nan, math.inf, -math.inf, "", " ", "\x00", "\ud800", "\u202e", "x" * 5000, [], {}, True, False, None,
)  # fmt: skip


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any value JSON (as Python reads it, NaN and huge numbers included) can hold, and some extremes."""
    leaves = _SCALARS | st.sampled_from(_EXTREMES)
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
        max_leaves=max_leaves,
    )


def json_objects(keys: Sequence[str] = (), max_leaves: int = 12) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects whose keys are drawn from ``keys`` (the protocol's own) or anything."""
    key = st.sampled_from(list(keys)) | st.text(max_size=12) if keys else st.text(max_size=12)
    return st.dictionaries(key, json_values(max_leaves), max_size=8)


def hostile_values() -> st.SearchStrategy[Any]:
    """Values put in place of a real field: wrong types, extremes, empty and deeply nested containers."""
    nested = st.integers(1, 200).map(_nested_list)
    return st.sampled_from(_EXTREMES) | nested | json_values(6)


def _nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where fields are in a message, at most :data:`_MUTATION_DEPTH` levels down (real messages are shallow)."""
    if len(prefix) >= _MUTATION_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A real message of ``examples`` with one to three fields (at any depth) replaced, removed or added."""
    message = copy.deepcopy(dict(draw(st.sampled_from(list(examples)))))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(message))
        action = draw(st.sampled_from(("replace", "remove", "add")))
        if action == "add" or not paths:
            message[draw(st.text(max_size=12))] = draw(hostile_values())
            continue
        *parents, last = draw(st.sampled_from(paths))
        container: Any = message
        for step in parents:
            container = container[step]
        if action == "remove":
            del container[last]
        else:
            container[last] = draw(hostile_values())
    return message


def hostile_frames() -> st.SearchStrategy[str | bytes]:
    """Whole frames that are not what a protocol expects: any bytes or text, broken and deeply nested JSON."""
    deep = st.sampled_from((1_000, 10_000, DEEP)).flatmap(
        lambda depth: st.sampled_from(("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth))
    )
    specials = st.sampled_from(
        ("", " ", "null", "[]", "{}", "NaN", "-Infinity", '{"type": NaN}', "1e400", "9" * 5000, '"\\ud800"', "\ufeff{}")
    )
    return st.binary(max_size=64) | st.text(max_size=64) | deep | specials


def hostile_texts() -> st.SearchStrategy[str]:
    """The text frames of :func:`hostile_frames` (for a body or a reason that is already text)."""
    return hostile_frames().map(lambda frame: frame if isinstance(frame, str) else frame.decode("utf-8", "replace"))


# --- the property -----------------------------------------------------------------------------------------------


def conforms(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of the (resolved) type annotation ``kind``; attrs instances are checked field by field."""
    if kind is Any or kind is object:
        return True
    if kind is None or kind is type(None):
        return value is None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(conforms(item, args[0]) for item in value)
        return len(value) == len(args) and all(conforms(item, arg) for item, arg in zip(value, args, strict=True))
    if origin in (list, Sequence):
        return isinstance(value, (list, tuple)) and all(conforms(item, args[0]) for item in value) if args else True
    if origin in (dict, Mapping):
        return isinstance(value, Mapping) and (
            not args or all(conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
        )
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(kind, type) and attrs.has(kind):
        return isinstance(value, kind) and _attrs_conform(value)
    if isinstance(kind, type):
        return isinstance(value, kind)
    raise TypeError(f"cannot check against the annotation {kind!r}")


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond any float
        return False


def _attrs_conform(instance: Any) -> bool:
    cls = type(instance)
    hints = typing.get_type_hints(cls)
    return all(conforms(getattr(instance, field.name), hints[field.name]) for field in attrs.fields(cls))


def check_typed(value: Any, kind: Any) -> None:
    """Fail (with what was wrong) unless ``value`` conforms to ``kind``."""
    assert conforms(value, kind), f"{value!r} is not a well-typed {kind!r}"


def typed_or_error(parse: Callable[..., Any], *args: Any, returns: Any = None, **kwargs: Any) -> Any:
    """Call ``parse``: its result must be of its return annotation (or ``returns``), and its only failure a
    :class:`SpeechBridgeError` with a short message; returns the result, or the error."""
    try:
        result = parse(*args, **kwargs)
    except SpeechBridgeError as error:
        message = str(error)
        assert message, f"{type(error).__name__} has no message"
        assert len(message) <= MAX_MESSAGE_CHARS, f"{type(error).__name__} message is {len(message)} characters long"
        return error
    check_typed(result, returns if returns is not None else typing.get_type_hints(parse)["return"])
    return result


async def declared_body_status(url: str, path: str, size: int, headers: Mapping[str, str] | None = None) -> int:
    """The HTTP status a server at ``url`` answers to a POST to ``path`` that declares a ``size``-byte body (and sends
    none of it): how a front refuses a body over its limit before reading it."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {size}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    return int(status_line.split()[1])
