"""Migrations: a vendor's own options (Deepgram live options, a Cartesia request body, ...) as speechbridge config.

A backend registers a migration with the ``speechbridge_register_migrations`` hook; a migration takes the parsed
options and returns a :class:`Migration`: the ``speechbridge.toml`` tables, the audio formats the caller declares,
everything that did not map (with the reason) and notes. ``speechbridge migrate VENDOR FILE`` prints it.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigError

__all__ = [
    "Migration",
    "MigrationFunction",
    "Unmapped",
    "as_bool",
    "as_int",
    "read_options",
    "toml_value",
    "write_toml",
]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
COMMENT_WIDTH = 116


@attrs.frozen
class Unmapped:
    """A vendor option with no speechbridge equivalent, its value, and why (with the workaround when there is one)."""

    field: str
    value: Any
    reason: str


@attrs.frozen
class Migration:
    """What a vendor's options become.

    ``config`` maps table names (``"stt"``, ``"tts"``, ``"providers.deepgram"``) to their keys; ``audio`` maps
    ``"stt"`` / ``"tts"`` to the format to declare (``stt.stream(format=...)``, ``tts.synthesize(format=...)``).
    """

    vendor: str
    config: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    audio: Mapping[str, str] = attrs.field(factory=dict)
    unmapped: tuple[Unmapped, ...] = ()
    notes: tuple[str, ...] = ()

    def to_toml(self) -> str:
        """The config as ``speechbridge.toml`` text; the audio formats and notes as comments above it."""
        comments = [f"speechbridge config migrated from {self.vendor} options"]
        calls = {"stt": "stt.stream(format=...)", "tts": "tts.synthesize(format=...) / tts.stream(format=...)"}
        comments += [f"declare the {kind} audio: {fmt}, in {calls.get(kind, kind)}" for kind, fmt in self.audio.items()]
        for note in self.notes:
            comments += note.splitlines()
        wrapped = [textwrap.wrap(line, COMMENT_WIDTH, subsequent_indent="  ") or [""] for line in comments]
        header = "".join(f"# {part}".rstrip() + "\n" for parts in wrapped for part in parts)
        return header + "\n" + write_toml(self.config)

    def to_json(self) -> dict[str, Any]:
        """Everything as plain JSON-ready data."""
        return {
            "vendor": self.vendor,
            "config": {name: dict(table) for name, table in self.config.items()},
            "audio": dict(self.audio),
            "unmapped": [attrs.asdict(each) for each in self.unmapped],
            "notes": list(self.notes),
        }


MigrationFunction = Callable[[Mapping[str, Any]], Migration]


def write_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """Flat TOML tables (``name`` may be dotted, e.g. ``providers.deepgram``) of strings, numbers, booleans, lists."""
    blocks = []
    for name, table in tables.items():
        header = ".".join(_key(part) for part in name.split("."))
        lines = [f"[{header}]"] + [f"{_key(key)} = {toml_value(value)}" for key, value in table.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def toml_value(value: Any) -> str:
    """``value`` as a TOML value; anything but a string, finite number, boolean or list of those is a ConfigError."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"a TOML value here is a finite number, not {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(each) for each in value) + "]"
    raise ConfigError(f"cannot write {value!r} as a TOML value (accepted: strings, numbers, booleans, lists)")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def read_options(path: str | Path) -> dict[str, Any]:
    """A vendor's options from ``path``: a JSON object, a TOML file (``.toml``), or a query string / URL.

    Query-string values are read as ``true``/``false``, whole numbers or text; a repeated key becomes a list.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read {file}: {reason}") from None
    stripped = text.strip()
    if file.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{file} is not valid TOML: {error}") from None
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{file} is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file} must hold a JSON object of options, not a {type(data).__name__}")
        return data
    if "=" in stripped and not any(char.isspace() for char in stripped):
        return _query_options(stripped)
    raise ConfigError(f"{file} is not options (accepted: a JSON object, a .toml file, a query string or URL)")


def _query_options(text: str) -> dict[str, Any]:
    query = urllib.parse.urlsplit(text).query if "?" in text else text
    options: dict[str, Any] = {}
    for key, raw in urllib.parse.parse_qsl(query, keep_blank_values=True):
        value: Any = {"true": True, "false": False}.get(raw, int(raw) if raw.isdigit() else raw)
        if key in options:
            previous = options[key]
            options[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            options[key] = value
    return options


def as_bool(name: str, value: Any) -> bool:
    """``value`` as a boolean: ``True``/``False`` or the strings ``"true"``/``"false"`` the vendors' SDKs take."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def as_int(name: str, value: Any) -> int:
    """``value`` as a whole number: an int or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ConfigError(f"{name} must be a whole number, not {value!r}")
