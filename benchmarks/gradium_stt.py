"""The Gradium STT client against the official SDK: turn latency, and CPU time per real-time stream.

    .venv/bin/python benchmarks/gradium_stt.py [--streams N] [--seconds S] [--rounds R] [--turns T] [--speedup X]
                                                [--profile]

1. **Turn latency.** A Gradium server (``make_app`` over ``ScriptedSTT``, behind ``LiveServer``) runs in this process.
   One stream speaks ``T`` short turns (three words, then silence until ``TurnEnded``), paced at ``X`` times real
   time; the client's semantic-VAD policy ends each turn with a flush. Each ``TurnEnded`` the caller's ``async for``
   receives is timed (``time.perf_counter``) from the moment the bytes of its ``flushed`` frame reach the client's
   socket (the client connection's ``data_received``), and, as a bound from above that also counts uvicorn's write
   and the loopback hop, from the moment the server hands that frame to uvicorn. The server shares the event loop,
   so its work on the next audio chunk can land inside either interval: both figures are upper bounds.
2. **CPU per real-time stream.** The same server runs in a separate process. Each round starts four fresh client
   processes side by side (so that all see the same load on a shared machine): speechbridge's ``GradiumSTT`` on each
   WebSocket engine (picows and websockets), the official ``gradium`` SDK (``GradiumClient.stt_realtime``) and, for
   reference, the SDK's work done with the ``websockets`` library and ``json`` alone. Each opens ``N`` concurrent
   streams, sends ``S`` seconds of 24 kHz PCM (tone and silence) per stream in 80 ms chunks paced at real time, and
   reads every message. A process's CPU time (user and system, all threads) over the audio seconds it streamed is
   the cost of one real-time stream; the clock starts after a short warm-up stream, so that one-time costs (imports
   on first use, SSL contexts) count for no client. Ratios against the SDK are taken per round, then the median.

``--profile`` runs both parts under cProfile: the latency part's costliest functions go to standard error, and a
table shows each client's CPU time by package (every figure is then inflated by the profiler).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import itertools
import json
import math
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Final, TypeVar

from server_process import serve_and_announce, server_process
from speechbridge_gradium.server import make_app
from speechbridge_gradium.stt import GradiumSTT
from websockets.asyncio.client import connect

from speechbridge.events import TurnEnded
from speechbridge.testing.scripted import ScriptedSTT
from speechbridge.testing.servers import LiveServer
from speechbridge.websocket import WebSocket

__all__ = ["main"]

T = TypeVar("T")

RATE: Final = 24000
CHUNK_S: Final = 0.08
WARM_UP_CHUNKS: Final = 3  # the one-stream run before the clock starts
API_KEY: Final = "benchmark-key"
WORDS: Final = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
SCRIPT_WORDS: Final = 5000
TURN_WORD_MS: Final = 160.0
TURN_SPEECH_CHUNKS: Final = 6  # three words
TURN_SILENCE_LIMIT: Final = 60  # chunks of silence with no TurnEnded before the benchmark gives up
CYCLE: Final = (20, 15)  # CPU streams: 1.6 s of tone, then 1.2 s of silence, over and over
LATENCY_TARGET_MS: Final = 1.0
CPU_RATIO_TARGET: Final = 1.0  # against the SDK
RAW_RATIO_TARGET: Final = 1.3  # against the raw websockets + json client
FLUSH_ID: Final = re.compile(r'"flush_id":\s*(\d+)')
LATENCY_ROWS: Final = ("`flushed` at the client's socket -> caller gets `TurnEnded`",
                       "`flushed` handed to the server's socket -> caller gets `TurnEnded`")  # fmt: skip
CPU_ROWS: Final = {
    "speechbridge": "speechbridge (picows engine)",
    "speechbridge-websockets": "speechbridge (websockets engine)",
    "sdk": "official SDK",
    "websockets": "raw websockets + json",
}


def tone_chunk() -> bytes:
    """80 ms of a 440 Hz tone at about -13 dBFS: voiced for ``ScriptedSTT``."""
    count = round(CHUNK_S * RATE)
    return array("h", (round(7000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(count))).tobytes()


SPEECH: Final = tone_chunk()
SILENCE: Final = bytes(len(SPEECH))


def scripted_backend(ms_per_word: float) -> ScriptedSTT:
    return ScriptedSTT(script=list(itertools.islice(itertools.cycle(WORDS), SCRIPT_WORDS)),
                       ms_per_word=ms_per_word, sample_rate=RATE)  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


class Pacer:
    """Sleeps until the next chunk is due: one per ``interval_s``, on a fixed schedule (no drift)."""

    def __init__(self, interval_s: float, offset_s: float = 0.0) -> None:
        self.interval_s = interval_s
        self.next_s = asyncio.get_running_loop().time() + offset_s
        self.worst_lag_s = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        if now < self.next_s:
            await asyncio.sleep(self.next_s - now)
        else:
            self.worst_lag_s = max(self.worst_lag_s, now - self.next_s)
        self.next_s += self.interval_s


# --- 1. turn latency ---------------------------------------------------------------------------------------------


def stamp_flushed_writes(app: Any, written: dict[int, float]) -> Any:
    """``app`` with the time each ``flushed`` frame is handed to the server's WebSocket recorded by flush id."""

    async def stamped(scope: Any, receive: Any, send: Any) -> None:
        async def timed_send(message: Any) -> None:
            text = message.get("text")
            if text and '"flushed"' in text:
                written[json.loads(text)["flush_id"]] = time.perf_counter()
            await send(message)

        await app(scope, receive, timed_send if scope["type"] == "websocket" else send)

    return stamped


@contextlib.contextmanager
def stamp_flushed_arrivals(arrived: dict[int, float]) -> Iterator[None]:
    """Record, by flush id, when each ``flushed`` message comes out of the WebSocket engine of this process (picows
    or websockets: the first moment speechbridge code can see it)."""
    original = WebSocket._received

    def received(self: WebSocket, message: str | bytes) -> None:
        if isinstance(message, str) and '"flushed"' in message:
            now = time.perf_counter()
            for found in FLUSH_ID.finditer(message):
                arrived.setdefault(int(found[1]), now)
        original(self, message)

    WebSocket._received = received  # type: ignore[method-assign]
    try:
        yield
    finally:
        WebSocket._received = original  # type: ignore[method-assign]


async def turn_latencies(turns: int, speedup: float) -> tuple[list[float], list[float]]:
    """Per turn, seconds from the ``flushed`` frame (reaching the socket; written by the server) to ``TurnEnded``."""
    written: dict[int, float] = {}
    arrived: dict[int, float] = {}
    from_socket: list[float] = []
    from_server: list[float] = []
    app = stamp_flushed_writes(make_app(scripted_backend(TURN_WORD_MS), None), written)
    with stamp_flushed_arrivals(arrived):
        async with LiveServer(app) as server:
            stt = GradiumSTT(api_key=API_KEY, base_url=server.url + "/api", turn_horizon_s=0.5)
            async with stt, stt.stream(format=f"pcm_{RATE}") as stream:
                turn_over = asyncio.Event()

                async def speak() -> None:
                    pacer = Pacer(CHUNK_S / speedup)
                    for turn in range(turns):
                        turn_over.clear()
                        for _ in range(TURN_SPEECH_CHUNKS):
                            await pacer.wait()
                            await stream.send_audio(SPEECH)
                        for _ in range(TURN_SILENCE_LIMIT):
                            if turn_over.is_set():
                                break
                            await pacer.wait()
                            await stream.send_audio(SILENCE)
                        else:
                            raise RuntimeError(f"turn {turn + 1} never ended: no TurnEnded after its silence")
                    await stream.end()

                async def listen() -> None:
                    async for event in stream:
                        if isinstance(event, TurnEnded) and len(from_socket) < turns:
                            now = time.perf_counter()
                            flush_id = len(from_socket) + 1  # the client's own flushes are numbered 1, 2, ...
                            if max(arrived, default=None) != flush_id:
                                raise RuntimeError(f"TurnEnded {flush_id} did not follow flushed {flush_id}")
                            from_socket.append(now - arrived[flush_id])
                            from_server.append(now - written[flush_id])
                            turn_over.set()

                async with asyncio.TaskGroup() as group:
                    group.create_task(speak())
                    group.create_task(listen())
    if len(from_socket) != turns or len(arrived) != turns:
        raise RuntimeError(f"expected {turns} turns, got {len(from_socket)} TurnEnded and {len(arrived)} flushed")
    return from_socket, from_server


def run_profiled(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` under cProfile; the 30 functions with the most time of their own go to standard error."""
    with cProfile.Profile() as profile:
        result = asyncio.run(main)
    pstats.Stats(profile, stream=sys.stderr).strip_dirs().sort_stats("tottime").print_stats(30)
    return result


# --- 2. CPU per real-time stream ---------------------------------------------------------------------------------


def stream_chunks(seconds: float) -> list[bytes]:
    pattern = [SPEECH] * CYCLE[0] + [SILENCE] * CYCLE[1]
    return list(itertools.islice(itertools.cycle(pattern), round(seconds / CHUNK_S)))


async def send_paced(send: Callable[[bytes], Awaitable[None]], chunks: list[bytes], offset_s: float) -> float:
    """Send every chunk at real time; returns the worst lateness of a chunk against its schedule."""
    pacer = Pacer(CHUNK_S, offset_s)
    for chunk in chunks:
        await pacer.wait()
        await send(chunk)
    return pacer.worst_lag_s


async def speechbridge_streams(url: str, streams: int, chunks: list[bytes], counts: Counter[str]) -> float:
    """speechbridge's ``GradiumSTT``: every event read by the caller."""
    stt = GradiumSTT(api_key=API_KEY, base_url=url + "/api")

    async def one(index: int) -> float:
        async with stt.stream(format=f"pcm_{RATE}") as stream:

            async def read() -> None:
                async for event in stream:
                    counts[type(event).__name__] += 1

            reader = asyncio.create_task(read())
            lag = await send_paced(stream.send_audio, chunks, index * CHUNK_S / streams)
            await stream.end()
            await reader
            return lag

    async with stt:
        return max(await asyncio.gather(*(one(index) for index in range(streams))))


async def sdk_streams(url: str, streams: int, chunks: list[bytes], counts: Counter[str]) -> float:
    """The official SDK's ``stt_realtime``: every message read."""
    import gradium  # type: ignore[import-untyped]

    client = gradium.client.GradiumClient(base_url=url + "/api/", api_key=API_KEY)

    async def one(index: int) -> float:
        async with client.stt_realtime(model_name="default", input_format=f"pcm_{RATE}", json_config={}) as stt:

            async def read() -> None:
                async for message in stt:
                    counts[message["type"]] += 1
                    if message["type"] == "end_of_stream":
                        return

            reader = asyncio.create_task(read())
            lag = await send_paced(stt.send_audio, chunks, index * CHUNK_S / streams)
            await stt.send_eos()
            await reader
            return lag

    return max(await asyncio.gather(*(one(index) for index in range(streams))))


async def websockets_streams(url: str, streams: int, chunks: list[bytes], counts: Counter[str]) -> float:
    """The SDK's work done with the ``websockets`` library alone, the transport speechbridge is built on."""

    async def one(index: int) -> float:
        headers = {"x-api-key": API_KEY}
        async with connect("ws" + url.removeprefix("http") + "/api/speech/asr", additional_headers=headers,
                           compression=None) as websocket:  # fmt: skip
            setup = {"type": "setup", "model_name": "default", "input_format": f"pcm_{RATE}", "json_config": {}}
            await websocket.send(json.dumps(setup))

            async def read() -> None:
                async for frame in websocket:
                    counts[json.loads(frame)["type"]] += 1

            async def send_audio(chunk: bytes) -> None:
                await websocket.send(json.dumps({"type": "audio", "audio": base64.b64encode(chunk).decode()}))

            reader = asyncio.create_task(read())
            lag = await send_paced(send_audio, chunks, index * CHUNK_S / streams)
            await websocket.send(json.dumps({"type": "end_of_stream"}))
            await reader
            return lag

    return max(await asyncio.gather(*(one(index) for index in range(streams))))


CLIENTS: Final = {
    "speechbridge": speechbridge_streams,
    "speechbridge-websockets": speechbridge_streams,
    "sdk": sdk_streams,
    "websockets": websockets_streams,
}


def cpu_by_package(profile: cProfile.Profile) -> dict[str, float]:
    """The CPU time profiled functions spent in their own code, by package (or standard-library module)."""
    roots = sorted((os.path.abspath(entry) + os.sep for entry in sys.path if entry), key=len, reverse=True)
    totals: Counter[str] = Counter()
    for (filename, _, _), (_, _, own_s, _, _) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        root = next((root for root in roots if filename.startswith(root)), None)
        package = "(C functions)" if filename == "~" else filename
        if root is not None:
            package = filename.removeprefix(root).split(os.sep)[0].removesuffix(".py")
        totals[package] += own_s
    return dict(totals)


def run_client(variant: str, url: str, streams: int, seconds: float, *, profile: bool) -> None:
    """The body of a client process: stream, then print what it cost as one JSON line."""
    os.environ["SPEECHBRIDGE_WEBSOCKET"] = "websockets" if variant == "speechbridge-websockets" else "picows"
    chunks = stream_chunks(seconds)
    # A warm-up stream before the clock starts: imports done on first use, SSL contexts and the like are paid once
    # per process, not per stream, and are left out for every client alike.
    asyncio.run(CLIENTS[variant](url, 1, chunks[:WARM_UP_CHUNKS], Counter()))
    counts: Counter[str] = Counter()
    profiler = cProfile.Profile(time.process_time) if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    with profiler or contextlib.nullcontext():
        lag = asyncio.run(CLIENTS[variant](url, streams, chunks, counts))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    result = {"cpu_s": cpu, "wall_s": wall, "audio_s": streams * len(chunks) * CHUNK_S, "lag_s": lag, "counts": counts}
    if profiler is not None:
        result["profile"] = cpu_by_package(profiler)
    print(json.dumps(result))


def run_server() -> None:
    """The body of the server process: serve until SIGTERM, the URL on the first line of standard output."""
    app = make_app(scripted_backend(300.0), None)
    serve_and_announce(app)


def client_round(url: str, streams: int, seconds: float, *, profile: bool) -> dict[str, dict[str, Any]]:
    """One fresh process per client, run side by side so that all of them see the same machine."""
    options = ["--url", url, "--streams", str(streams), "--seconds", str(seconds), *(["--profile"] if profile else [])]
    processes = {
        variant: subprocess.Popen(
            [sys.executable, __file__, "--role", variant, *options], stdout=subprocess.PIPE, text=True
        )
        for variant in CLIENTS
    }
    results = {}
    for variant, process in processes.items():
        output, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"the {variant} client process failed (exit status {process.returncode})")
        results[variant] = json.loads(output.strip().splitlines()[-1])
    return results


# --- the table ---------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def report(args: argparse.Namespace, latency: tuple[list[float], list[float]], rounds: list[dict[str, Any]]) -> None:
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.turns} turns at {args.speedup:g}x real time; {args.streams} streams x {args.seconds:g} s per client, "
        f"{len(rounds)} round{'' if len(rounds) == 1 else 's'}"
        + (" (under cProfile: every figure is inflated by the profiler)" if args.profile else "")
    )
    print()
    print("| what | median | spread | target |")
    print("|---|---|---|---|")
    for name, values in zip(LATENCY_ROWS, latency, strict=True):
        median = statistics.median(values)
        verdict = "ok" if median * 1000 <= LATENCY_TARGET_MS else "MISSED"
        spread = f"p95 {ms(percentile(values, 0.95))}, max {ms(max(values))}"
        print(f"| {name} | {ms(median)} | {spread} | <= {LATENCY_TARGET_MS:g} ms {verdict} |")
    for variant, name in CPU_ROWS.items():
        values = [result[variant]["cpu_s"] / result[variant]["audio_s"] * 1000 for result in rounds]
        spread = f"{min(values):.2f} to {max(values):.2f}"
        print(f"| CPU per real-time stream, {name} | {statistics.median(values):.2f} ms/s | {spread} | |")
    ratios = (
        ("speechbridge", "sdk", CPU_RATIO_TARGET),
        ("speechbridge", "websockets", RAW_RATIO_TARGET),
        ("speechbridge-websockets", "sdk", None),
        ("speechbridge-websockets", "websockets", None),
        ("websockets", "sdk", None),
    )
    for variant, base, limit in ratios:
        values = [result[variant]["cpu_s"] / result[base]["cpu_s"] for result in rounds]
        median = statistics.median(values)
        target = "" if limit is None else f"<= {limit:g}" + (" ok" if median <= limit else " MISSED")
        spread = f"{min(values):.2f} to {max(values):.2f}"
        print(f"| CPU ratio {CPU_ROWS[variant]} / {CPU_ROWS[base]} | {median:.2f} | {spread} | {target} |")
    print()
    for number, result in enumerate(rounds, 1):
        for variant, run in result.items():
            counts = ", ".join(f"{name} {count}" for name, count in sorted(run["counts"].items()))
            cost = f"{run['cpu_s']:.3f} s CPU for {run['audio_s']:.0f} s of audio in {run['wall_s']:.1f} s"
            print(f"- round {number}, {variant}: {cost}, late by {run['lag_s'] * 1000:.0f} ms at worst; got {counts}")


def profile_table(rounds: list[dict[str, Any]]) -> None:
    """Where each client's CPU went under cProfile (own time by package, summed over the rounds)."""
    totals = {variant: Counter[str]() for variant in CLIENTS}
    for result in rounds:
        for variant, run in result.items():
            totals[variant].update(run["profile"])
    shares = {name: max(t[name] / t.total() for t in totals.values()) for name in set().union(*totals.values())}
    packages = sorted((name for name, share in shares.items() if share >= 0.01), key=lambda name: -shares[name])
    print("\nOwn CPU time by package under cProfile, seconds over all rounds (inflated by the profiler):\n")
    print("| package | " + " | ".join(CPU_ROWS.values()) + " |")
    print("|---|" + "---|" * len(CPU_ROWS))
    for package in packages:
        print(f"| {package} | " + " | ".join(f"{totals[variant][package]:.3f}" for variant in CPU_ROWS) + " |")
    print("| all profiled code | " + " | ".join(f"{totals[variant].total():.3f}" for variant in CPU_ROWS) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=20, help="concurrent real-time streams per client (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per stream (default 10)")
    parser.add_argument("--turns", type=int, default=200, help="turns timed for the latency (default 200)")
    parser.add_argument("--speedup", type=float, default=10.0, help="audio pace of the turns, x real time (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of client processes (default 5)")
    parser.add_argument("--profile", action="store_true", help="run everything under cProfile and show where time went")
    parser.add_argument("--role", choices=("server", *CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        run_server()
        return
    if args.role is not None:
        run_client(args.role, args.url, args.streams, args.seconds, profile=args.profile)
        return
    run = run_profiled if args.profile else asyncio.run
    latency = run(turn_latencies(args.turns, args.speedup))
    with server_process(__file__) as (url, _):
        rounds = [client_round(url, args.streams, args.seconds, profile=args.profile) for _ in range(args.rounds)]
    report(args, latency, rounds)
    if args.profile:
        profile_table(rounds)


if __name__ == "__main__":
    main()
