"""What a comparison reads: recordings with their reference transcripts, and texts to speak.

Recordings come from a folder (each audio file next to a ``.txt`` of the same name, searched recursively), a CSV
manifest (columns ``audio`` and ``text``, optional ``id``), or a JSONL manifest (one ``{"audio": ..., "text": ...}``
object a line, optional ``"id"``). Paths in a manifest are relative to the manifest's folder.
Texts come from a ``.txt`` file (one text a line), a CSV (column ``text``, optional ``id``) or a JSONL file.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ..errors import ConfigError

__all__ = ["AUDIO_SUFFIXES", "AudioItem", "TextItem", "load_audio_items", "load_texts"]

AUDIO_SUFFIXES: Final = (".wav", ".flac", ".ogg", ".opus", ".mp3")
MANIFEST_SUFFIXES: Final = (".csv", ".jsonl")
TEXT_SUFFIXES: Final = (".txt", ".csv", ".jsonl")
ACCEPTED_SOURCES: Final = (
    "a folder of audio files each with a .txt transcript of the same name",
    "a .csv manifest with columns audio,text[,id]",
    "a .jsonl manifest of {'audio': ..., 'text': ...[, 'id': ...]}",
)


@attrs.frozen
class AudioItem:
    """A recording and what is said in it; ``id`` names it in results (unique within a comparison)."""

    id: str
    path: Path
    reference: str


@attrs.frozen
class TextItem:
    """A text to speak; ``id`` names it in results."""

    id: str
    text: str


def load_audio_items(source: str | os.PathLike[str]) -> list[AudioItem]:
    """The recordings of a folder or manifest, in a stable order; every audio file must have its transcript."""
    path = Path(source)
    if path.is_dir():
        items = _folder_items(path)
    elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        items = [_manifest_item(path, number, row) for number, row in _rows(path)]
    elif path.exists():
        raise ConfigError(f"{path} is neither a folder nor a manifest", allowed=ACCEPTED_SOURCES)
    else:
        raise ConfigError(f"{path} does not exist", allowed=ACCEPTED_SOURCES)
    if not items:
        raise ConfigError(f"{path} holds no recordings", allowed=ACCEPTED_SOURCES)
    _check_unique(path, (item.id for item in items))
    return items


def load_texts(source: str | os.PathLike[str]) -> list[TextItem]:
    """The texts of a ``.txt`` (one a line; blank lines skipped), ``.csv`` or ``.jsonl`` file."""
    path = Path(source)
    if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
        what = "does not exist" if not path.exists() else "is not a text file"
        raise ConfigError(f"texts file {path} {what}", allowed=TEXT_SUFFIXES)
    if path.suffix.lower() == ".txt":
        lines = _read(path).splitlines()
        items = [TextItem(f"text-{number:03d}", line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    else:
        items = []
        for number, row in _rows(path):
            text = _text_field(path, number, row)
            items.append(TextItem(str(row.get("id") or f"text-{number:03d}"), text))
    if not items:
        raise ConfigError(f"texts file {path} holds no text")
    _check_unique(path, (item.id for item in items))
    return items


def _folder_items(folder: Path) -> list[AudioItem]:
    audio_files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    items = []
    for audio in audio_files:
        transcript = audio.with_suffix(".txt")
        if not transcript.is_file():
            raise ConfigError(f"{audio} has no transcript: put what is said in it in {transcript.name} beside it")
        reference = _read(transcript).strip()
        if not reference:
            raise ConfigError(f"transcript {transcript} is empty")
        items.append(AudioItem(audio.relative_to(folder).with_suffix("").as_posix(), audio, reference))
    return items


def _manifest_item(manifest: Path, number: int, row: Mapping[str, Any]) -> AudioItem:
    where = f"{manifest}, {'row' if manifest.suffix.lower() == '.csv' else 'line'} {number}"
    audio = row.get("audio")
    if not isinstance(audio, str) or not audio:
        raise ConfigError(f"{where}: 'audio' must be the path of a recording, not {audio!r}")
    path = Path(audio) if Path(audio).is_absolute() else manifest.parent / audio
    if not path.is_file():
        raise ConfigError(f"{where}: recording {path} does not exist")
    reference = _text_field(manifest, number, row)
    return AudioItem(str(row.get("id") or Path(audio).with_suffix("").as_posix()), path, reference)


def _text_field(path: Path, number: int, row: Mapping[str, Any]) -> str:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{path}, entry {number}: 'text' must be non-empty text, not {text!r}")
    return text.strip()


def _rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The entries of a CSV (after its header) or JSONL file, numbered from 1; unknown columns are errors."""
    allowed = ("id", "audio", "text")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(_read(path).splitlines())
        columns = reader.fieldnames or []
        for column in columns:
            if column not in allowed:
                raise ConfigError(f"{path}: unknown column {column!r}", allowed=allowed)
        if "text" not in columns:
            raise ConfigError(f"{path}: the header needs a 'text' column", allowed=allowed)
        yield from enumerate(reader, 1)
        return
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}, line {number}: each line is a JSON object, not {type(row).__name__}")
        for key in row:
            if key not in allowed:
                raise ConfigError(f"{path}, line {number}: unknown key {key!r}", allowed=allowed)
        yield number, row


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _check_unique(source: Path, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise ConfigError(f"{source}: the id {item_id!r} is used twice; ids must be unique")
        seen.add(item_id)
