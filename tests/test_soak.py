"""A short soak (``benchmarks/soak.py``): hundreds of sessions of every kind leave no file descriptor or task behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).parent.parent / "benchmarks" / "soak.py"


def growth(table: str, measure: str) -> int:
    """The growth column of ``measure``'s row in the soak's table."""
    found = re.search(rf"^{measure}\s+\d+\s+\d+\s+([+-]\d+)\s", table, re.MULTILINE)
    assert found, f"no row for {measure!r} in:\n{table}"
    return int(found.group(1))


def test_sessions_of_every_kind_leave_nothing_behind() -> None:
    pytest.importorskip("speechbridge_gradium")
    pytest.importorskip("uvicorn")
    done = subprocess.run(
        [sys.executable, str(SOAK), "--sessions", "200", "--warmup", "30", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: no growth; 0 sessions ended otherwise than their kind should" in done.stdout
    for measure in ("client fds", "client asyncio tasks", "server fds"):
        assert growth(done.stdout, measure) <= 0, done.stdout
    kinds = re.search(r"^stt-stream \d+, .*$", done.stdout, re.MULTILINE)
    assert kinds and "fault-drop" in kinds.group() and "fresh-provider" in kinds.group()


def test_a_leak_is_a_failing_verdict(tmp_path: Path) -> None:
    """The soak can fail: sessions that each leave a task running grow the task count and exit with 1."""
    pytest.importorskip("speechbridge_gradium")
    pytest.importorskip("uvicorn")
    leaky = tmp_path / "leaky_soak.py"
    source = SOAK.read_text()
    leak = '    "fresh-provider": (lambda c: c.fresh_provider(), False),\n'
    assert leak in source
    leaking = '    "fresh-provider": (lambda c: asyncio.sleep(0, asyncio.create_task(asyncio.sleep(3600))), False),\n'
    leaky.write_text(source.replace(leak, leaking))
    done = subprocess.run(
        [sys.executable, str(leaky), "--sessions", "20", "--warmup", "5", "--kinds", "fresh-provider"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert growth(done.stdout, "client asyncio tasks") == 20
    assert "GREW: client asyncio tasks" in done.stdout
