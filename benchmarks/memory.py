"""Memory per idle open STT stream: what K streams that connected but sent nothing cost the client process.

    .venv/bin/python benchmarks/memory.py [--streams K] [--top N]

A Gradium server (``make_app`` over ``ScriptedSTT``) runs in a process of its own, a fresh one for each measure.
Each measure runs in a fresh client process, which opens one stream (to load and warm everything up), then ``K``
more (default 1000; 50 at a time), waits until every one is ready, lets them sit for a second, collects garbage and
measures; the streams are then closed. Two measures per row, each in its own process since tracing costs memory of
its own:

- **RSS**: the growth of the client process's resident set (``/proc/self/statm``) over ``K``. It counts everything
  (Python objects, C buffers, heap fragmentation) and moves in whole pages, so it is only meaningful over many
  streams.
- **tracemalloc**: the growth of the memory Python allocated, over ``K``, with the lines that allocated the most
  (``--top N``, default 12) and the total by package. It misses memory a C extension takes from ``malloc`` directly.

Rows: ``GradiumSTT`` with one socket per stream (the default) on each WebSocket engine (``picows`` when installed,
and ``websockets``); ``GradiumSTT(multiplex=True)`` (16 streams a socket); ``ScriptedSTT`` in this process, the
core's own cost for a stream with no network at all. The server process's RSS growth is shown beside the Gradium
rows: the other side of the same sockets, not counted in the client's figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tracemalloc
from collections import Counter
from typing import Any, Final

from server_process import serve_and_announce, server_process
from speechbridge_gradium.server import make_app
from speechbridge_gradium.stt import GradiumSTT

from speechbridge.stt import STTProvider
from speechbridge.testing.scripted import ScriptedSTT

__all__ = ["main"]

API_KEY: Final = "benchmark-key"
RATE: Final = 16000
OPEN_AT_ONCE: Final = 50
SETTLE_S: Final = 1.0
TARGET_KIB: Final = 64.0
PAGE: Final = os.sysconf("SC_PAGE_SIZE")
VARIANTS: Final = {
    "gradium": ("GradiumSTT, one socket per stream", {}),
    "gradium-websockets": ("GradiumSTT, one socket per stream", {"SPEECHBRIDGE_WEBSOCKET": "websockets"}),
    "gradium-multiplex": ("GradiumSTT(multiplex=True), 16 streams a socket", {}),
    "scripted": ("ScriptedSTT in process (no network)", {}),
}


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def provider(variant: str, url: str) -> STTProvider[Any]:
    if variant == "scripted":
        return ScriptedSTT(sample_rate=RATE)
    return GradiumSTT(api_key=API_KEY, base_url=url + "/api", multiplex=variant == "gradium-multiplex")


def package_of(filename: str) -> str:
    """The top-level package (or standard-library module) a traced file belongs to."""
    roots = sorted((os.path.abspath(entry) + os.sep for entry in sys.path if entry), key=len, reverse=True)
    root = next((root for root in roots if filename.startswith(root)), None)
    if root is None:
        return filename
    return filename.removeprefix(root).split(os.sep)[0].removesuffix(".py")


async def hold_streams(
    variant: str, url: str, count: int, server_pid: int | None, *, trace: bool, top: int
) -> dict[str, Any]:
    """Open ``count`` idle streams, measure, close them; the figures as a dict."""
    stt = provider(variant, url)
    async with contextlib.AsyncExitStack() as streams:
        warm = await streams.enter_async_context(stt.stream(format=f"pcm_{RATE}"))  # imports and first-use caches
        del warm
        gc.collect()
        if trace:
            tracemalloc.start(1)
        before = tracemalloc.take_snapshot() if trace else None
        client_before = rss_bytes()
        server_before = rss_bytes(server_pid) if server_pid else 0
        for start in range(0, count, OPEN_AT_ONCE):
            batch = [stt.stream(format=f"pcm_{RATE}") for _ in range(min(OPEN_AT_ONCE, count - start))]
            await asyncio.gather(*(streams.enter_async_context(stream) for stream in batch))
        await asyncio.sleep(SETTLE_S)
        gc.collect()
        result: dict[str, Any] = {"client_rss": (rss_bytes() - client_before) / count}
        if server_pid:
            result["server_rss"] = (rss_bytes(server_pid) - server_before) / count
        if before is not None:
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            lines = after.compare_to(before, "lineno")
            result["traced"] = sum(stat.size_diff for stat in lines) / count
            result["top"] = [
                (f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}", stat.size_diff / count)
                for stat in lines[:top]
            ]
            packages: Counter[str] = Counter()
            for stat in lines:
                packages[package_of(stat.traceback[0].filename)] += stat.size_diff
            result["packages"] = {name: size / count for name, size in packages.most_common(8)}
    await stt.aclose()
    return result


def run_client(args: argparse.Namespace) -> None:
    """The body of a client process: one variant, one measure, a JSON line on standard output."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.streams + 256)), hard))
    server_pid = None if args.role == "scripted" else args.server_pid
    result = asyncio.run(hold_streams(args.role, args.url, args.streams, server_pid, trace=args.trace, top=args.top))
    print(json.dumps(result))


def run_server() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    app = make_app(ScriptedSTT(sample_rate=RATE), None)
    serve_and_announce(app)


def measure(variant: str, url: str, server_pid: int, args: argparse.Namespace, *, trace: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--role", variant, "--url", url, "--server-pid", str(server_pid),
               "--streams", str(args.streams), "--top", str(args.top), *(["--trace"] if trace else [])]  # fmt: skip
    environment = {**os.environ, **VARIANTS[variant][1]}
    if not VARIANTS[variant][1]:
        environment.pop("SPEECHBRIDGE_WEBSOCKET", None)
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode:
        raise RuntimeError(f"the {variant} client failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def kib(size: float) -> str:
    return f"{size / 1024:.1f} KiB"


def engine_of(variant: str) -> str:
    if variant == "scripted":
        return ""
    forced = VARIANTS[variant][1].get("SPEECHBRIDGE_WEBSOCKET")
    from speechbridge.websocket import default_engine

    return f" [{forced or default_engine()}]"


def report(args: argparse.Namespace, results: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.streams} idle streams per row, each row in a fresh client process"
    )
    print()
    print("| per idle open stream | client RSS | client tracemalloc | server RSS | target (client RSS) |")
    print("|---|---|---|---|---|")
    for variant, (plain, traced) in results.items():
        name = VARIANTS[variant][0] + engine_of(variant)
        verdict = "ok" if plain["client_rss"] <= TARGET_KIB * 1024 else "MISSED"
        server = kib(plain["server_rss"]) if "server_rss" in plain else "-"
        print(f"| {name} | {kib(plain['client_rss'])} | {kib(traced['traced'])} | {server} | "
              f"<= {TARGET_KIB:g} KiB {verdict} |")  # fmt: skip
    for variant, (_, traced) in results.items():
        name = VARIANTS[variant][0] + engine_of(variant)
        print(f"\nWhere the traced memory of one stream goes, {name}:\n")
        print("| allocated at | per stream |")
        print("|---|---|")
        for place, size in traced["top"]:
            print(
                f"| {os.path.relpath(place, os.getcwd()) if place.startswith(os.getcwd()) else place} | {kib(size)} |"
            )
        print("| **by package:** " + ", ".join(f"{name} {kib(size)}" for name, size in traced["packages"].items())
              + " | |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=1000, help="idle streams opened per row (default 1000)")
    parser.add_argument("--top", type=int, default=12, help="allocating lines shown per row (default 12)")
    parser.add_argument("--role", choices=("server", *VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        run_server()
        return
    if args.role is not None:
        run_client(args)
        return
    results = {}
    for variant in VARIANTS:
        with server_process(__file__) as (url, server_pid):
            plain = measure(variant, url, server_pid, args, trace=False)
        with server_process(__file__) as (url, server_pid):
            traced = measure(variant, url, server_pid, args, trace=True)
        results[variant] = (plain, traced)
    report(args, results)


if __name__ == "__main__":
    main()
