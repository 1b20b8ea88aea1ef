"""A benchmark's server in a process of its own: the script starts itself again with ``--role server``, and that
process serves an app on a free port of 127.0.0.1 and prints its URL first."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from speechbridge.serving import serve

__all__ = ["serve_and_announce", "server_process"]


def serve_and_announce(app: Any) -> None:
    """The ``--role server`` body: serve ``app`` until SIGTERM, its URL on the first line of standard output."""
    announce = lambda url: print(url, flush=True)  # noqa: E731
    asyncio.run(serve(app, host="127.0.0.1", port=0, log_level="warning", on_listening=announce))


@contextlib.contextmanager
def server_process(script: str, *options: str) -> Iterator[tuple[str, int]]:
    """Run ``script --role server *options``; yields the URL it announced and its process id, and stops it after."""
    process = subprocess.Popen(
        [sys.executable, script, "--role", "server", *options], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the server process did not start (printed {url!r})")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)
