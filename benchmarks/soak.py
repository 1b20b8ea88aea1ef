"""Soak: thousands of sequential sessions against a fake Gradium server, and whether anything piles up.

    .venv/bin/python benchmarks/soak.py [--sessions N] [--kinds K,K,...] [--seed S] [--warmup W]

The server runs in its own process: three Gradium fronts (``make_app`` over ``ScriptedSTT`` and ``ScriptedTTS``) on
127.0.0.1, one healthy, one that drops every connection after a few messages and one that sends an error frame. The
client runs ``N`` sessions one after another, each a kind drawn at random (seeded) from ``--kinds``:

- ``stt-stream`` / ``stt-stream-mux``: 0.5 s of audio over a WebSocket, sent as fast as it goes, on a socket of its
  own or multiplexed on a shared one; ``stt-rest``: the same audio transcribed over REST;
- ``tts-stream`` / ``tts-stream-mux`` / ``tts-rest``: "hello world" spoken over a WebSocket or REST;
- ``fresh-provider``: a new provider for one stream, then closed;
- ``fault-drop`` / ``fault-error`` / ``fault-rest``: sessions that fail by design (a dropped socket, an error frame,
  a REST error), with retries and reconnects off, that must raise a typed error.

After ``--warmup`` sessions, and again at the end, it measures the client's open file descriptors
(``/proc/self/fd``), its asyncio tasks, its Python memory (``tracemalloc``) and resident set size, and the server's
file descriptors and resident set size, and prints start, end and growth. It exits with 1 when anything grew beyond
a small tolerance or when a session ended otherwise than its kind should.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final

from speechbridge_gradium.server import Faults, make_app
from speechbridge_gradium.stt import GradiumSTT
from speechbridge_gradium.tts import GradiumTTS

from speechbridge.audio import PCMAudio
from speechbridge.errors import SpeechBridgeError
from speechbridge.reliability import Reliability
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, make_speech_sample

__all__ = ["main"]

API_KEY: Final = "soak-key"
TEXT: Final = "hello world"
CHUNK_BYTES: Final = 2560  # 80 ms of 16 kHz PCM
FRONTS: Final = {
    "healthy": None,
    "drop": Faults(drop_after=4),
    "error": Faults(error_after=4, error_code=1011),
}
NO_RETRIES: Final = Reliability(retries=0, reconnects=0)
TOLERANCE: Final = {  # growth allowed between the two measurements
    "client fds": 2,
    "client asyncio tasks": 0,
    "client traced KiB": 1024,
    "client RSS KiB": 16 * 1024,
    "server fds": 2,
    "server RSS KiB": 32 * 1024,
}


# --- the server process -----------------------------------------------------------------------------------------


async def run_server() -> None:
    """Serve the fronts, print their URLs on one line, and stop when standard input closes."""
    stt = ScriptedSTT(script=TEXT)
    tts = ScriptedTTS()
    servers = [LiveServer(make_app(stt, tts, api_keys=[API_KEY], faults=faults)) for faults in FRONTS.values()]
    for server in servers:
        await server.start()
    print(" ".join(server.url + "/api" for server in servers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers:
        await server.stop()


# --- sessions ---------------------------------------------------------------------------------------------------


class Clients:
    """The providers sessions share, each kept for the whole run as an application would keep it."""

    def __init__(self, urls: dict[str, str], audio: PCMAudio) -> None:
        self.urls = urls
        self.audio = audio
        healthy = {"api_key": API_KEY, "base_url": urls["healthy"]}
        self.stt = GradiumSTT(**healthy)
        self.stt_mux = GradiumSTT(**healthy, multiplex=True)
        self.tts = GradiumTTS(**healthy)
        self.tts_mux = GradiumTTS(**healthy, multiplex=True)
        self.dropping = GradiumSTT(api_key=API_KEY, base_url=urls["drop"], reliability=NO_RETRIES)
        self.failing_stt = GradiumSTT(api_key=API_KEY, base_url=urls["error"], reliability=NO_RETRIES)
        self.failing_tts = GradiumTTS(api_key=API_KEY, base_url=urls["error"], reliability=NO_RETRIES)

    async def aclose(self) -> None:
        for provider in (self.stt, self.stt_mux, self.tts, self.tts_mux, self.dropping, self.failing_stt,
                         self.failing_tts):  # fmt: skip
            await provider.aclose()

    async def listen(self, stt: GradiumSTT) -> None:
        async with stt.stream(format=self.audio.format) as stream:
            data = self.audio.data
            for start in range(0, len(data), CHUNK_BYTES):
                await stream.send_audio(data[start : start + CHUNK_BYTES])
            await stream.end()
            await stream.collect()

    async def speak(self, tts: GradiumTTS) -> None:
        async with tts.stream(format="pcm_16000") as stream:
            await stream.send_text(TEXT)
            await stream.end()
            await stream.collect()

    async def fresh_provider(self) -> None:
        async with GradiumSTT(api_key=API_KEY, base_url=self.urls["healthy"]) as stt:
            await self.listen(stt)


Session = Callable[[Clients], Awaitable[Any]]

KINDS: Final[dict[str, tuple[Session, bool]]] = {  # kind -> (session, whether it must fail)
    "stt-stream": (lambda c: c.listen(c.stt), False),
    "stt-stream-mux": (lambda c: c.listen(c.stt_mux), False),
    "stt-rest": (lambda c: c.stt.transcribe(c.audio), False),
    "tts-stream": (lambda c: c.speak(c.tts), False),
    "tts-stream-mux": (lambda c: c.speak(c.tts_mux), False),
    "tts-rest": (lambda c: c.tts.synthesize(TEXT, format="wav"), False),
    "fresh-provider": (lambda c: c.fresh_provider(), False),
    "fault-drop": (lambda c: c.listen(c.dropping), True),
    "fault-error": (lambda c: c.speak(c.failing_tts), True),
    "fault-rest": (lambda c: c.failing_stt.transcribe(c.audio), True),
}
WEIGHTS: Final = {kind: 1 if must_fail else 6 for kind, (_, must_fail) in KINDS.items()}


async def run_session(clients: Clients, kind: str) -> str | None:
    """Run one session; a description of what went wrong when it did not end as its kind should, else None."""
    session, must_fail = KINDS[kind]
    try:
        async with asyncio.timeout(30):
            await session(clients)
    except SpeechBridgeError as error:
        return None if must_fail else f"{kind}: {type(error).__name__}: {error}"
    except Exception as error:
        return f"{kind}: unexpected {type(error).__name__}: {error}"
    return f"{kind}: succeeded but should have failed" if must_fail else None


# --- measuring --------------------------------------------------------------------------------------------------


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/status")


def measure(server_pid: int) -> dict[str, int]:
    gc.collect()
    return {
        "client fds": len(os.listdir("/proc/self/fd")),
        "client asyncio tasks": len(asyncio.all_tasks()) - 1,  # this coroutine's own task aside
        "client traced KiB": tracemalloc.get_traced_memory()[0] // 1024,
        "client RSS KiB": rss_kib(),
        "server fds": len(os.listdir(f"/proc/{server_pid}/fd")),
        "server RSS KiB": rss_kib(server_pid),
    }


def report(start: dict[str, int], end: dict[str, int]) -> list[str]:
    """Print the table; the names of the measures that grew beyond their tolerance."""
    grown = []
    print(f"{'measure':<22} {'start':>10} {'end':>10} {'growth':>8} {'allowed':>8}  verdict")
    for name, before in start.items():
        growth = end[name] - before
        ok = growth <= TOLERANCE[name]
        grown += [] if ok else [name]
        print(f"{name:<22} {before:>10} {end[name]:>10} {growth:>+8} {TOLERANCE[name]:>8}  {'ok' if ok else 'GREW'}")
    return grown


async def soak(sessions: int, kinds: list[str], seed: int, warmup: int, urls: dict[str, str], server_pid: int) -> int:
    audio = (await make_speech_sample(ScriptedTTS(sample_rate=16000), TEXT, padding_s=0.05)).audio
    chooser = random.Random(seed)
    plan = chooser.choices(kinds, weights=[WEIGHTS[kind] for kind in kinds], k=warmup + sessions)
    clients = Clients(urls, audio)
    problems: list[str] = []
    counts: Counter[str] = Counter()
    try:
        for kind in plan[:warmup]:
            problems += filter(None, [await run_session(clients, kind)])
        start = measure(server_pid)
        began = time.perf_counter()
        for done, kind in enumerate(plan[warmup:], 1):
            counts[kind] += 1
            problems += filter(None, [await run_session(clients, kind)])
            if done % 1000 == 0:
                gc.collect()
                traced = tracemalloc.get_traced_memory()[0] // 1024
                print(f"  {done:>6} sessions  {time.perf_counter() - began:7.1f} s  traced {traced} KiB", flush=True)
        elapsed = time.perf_counter() - began
        end = measure(server_pid)
    finally:
        await clients.aclose()
    print(
        f"\n{sessions} sessions after {warmup} of warm-up in {elapsed:.1f} s ({elapsed / sessions * 1000:.1f} ms each)"
    )
    print(", ".join(f"{kind} {counts[kind]}" for kind in kinds) + "\n")
    grown = report(start, end)
    for problem in problems[:10]:
        print(f"unexpected: {problem}")
    verdict = "no growth" if not grown else f"GREW: {', '.join(grown)}"
    print(f"\nverdict: {verdict}; {len(problems)} sessions ended otherwise than their kind should")
    return 1 if grown or problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions measured (default 10000)")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated kinds (default all: {', '.join(KINDS)})"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random order of kinds (default 1)")
    parser.add_argument("--warmup", type=int, default=100, help="sessions before the first measurement (default 100)")
    parser.add_argument("--role", choices=("client", "server"), default="client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        asyncio.run(run_server())
        return
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds or args.sessions < 1 or args.warmup < 0:
        parser.error(f"--kinds takes some of {', '.join(KINDS)}; --sessions >= 1, --warmup >= 0 (unknown: {unknown})")
    server = subprocess.Popen([sys.executable, __file__, "--role", "server"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        urls = dict(zip(FRONTS, server.stdout.readline().split(), strict=True))
        tracemalloc.start()
        status = asyncio.run(soak(args.sessions, kinds, args.seed, args.warmup, urls, server.pid))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    sys.exit(status)


if __name__ == "__main__":
    main()
