"""The runs file: one JSON run a line, appended as runs finish, so an interrupted comparison resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Generic, TypeVar

from ..errors import ConfigError
from .records import RunKey, STTRun, TTSRun

__all__ = ["STT_RUNS_FILE", "TTS_RUNS_FILE", "RunStore"]

STT_RUNS_FILE = "stt_runs.jsonl"
TTS_RUNS_FILE = "tts_runs.jsonl"

R = TypeVar("R", STTRun, TTSRun)


class RunStore(Generic[R]):
    """Runs of one kind in ``path``; a later line for the same item x profile x mode replaces an earlier one."""

    def __init__(self, path: str | os.PathLike[str], record: type[R]) -> None:
        self.path = Path(path)
        self.record: type[R] = record

    def load(self) -> dict[RunKey, R]:
        """The latest run of every key; no file is no runs. A line that is not a run is a :class:`ConfigError`."""
        latest: dict[RunKey, R] = {}
        if not self.path.exists():
            return latest
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the runs file {self.path}: {exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                run = self.record.from_dict(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{self.path}, line {number}: not JSON ({exc.msg})") from None
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"{self.path}, line {number}: {exc}") from None
            latest[run.key] = run
        return latest

    def append(self, run: R) -> None:
        """Add ``run`` as one line, written through at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(run.to_dict(), ensure_ascii=False) + "\n")
