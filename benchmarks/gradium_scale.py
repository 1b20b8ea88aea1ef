"""How many concurrent real-time Gradium STT streams one speechbridge process sustains.

    .venv/bin/python benchmarks/gradium_scale.py [--levels 100,200,...] [--seconds S] [--engine picows|websockets]

A light Gradium server runs in its own process, written on picows so that it costs the client's machine as little
as possible: it answers ``setup`` with ``ready``, every ``audio`` message with a ``step`` carrying four VAD horizons
(and every tenth one with a ``text`` word as well), ``end_of_stream`` with ``end_of_stream`` and a close. It follows
the wire protocol of shared/protocols/gradium.md, but does no recognition: the client is what is measured.

For each level N, a fresh client process opens N ``GradiumSTT`` streams (connections spread over the first
second), then each sends 24 kHz PCM in 80 ms chunks on a fixed real-time schedule for ``S`` seconds while a task
per stream reads every event. The lag of a chunk is how late its ``send_audio`` returned against its schedule; the
table gives p50, p99 and the worst lag over every chunk of every stream after the first second, the client's CPU
use, and the events received. A level passes when p99 < 20 ms; the script stops at the first level that fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import subprocess
import sys
import time
from array import array
from collections import Counter
from typing import Any, Final

RATE: Final = 24000
CHUNK_S: Final = 0.08
API_KEY: Final = "benchmark-key"
LAG_TARGET_S: Final = 0.020
WARM_UP_S: Final = 1.0
STEP: Final = (
    '{"type":"step","vad":[{"horizon_s":0.5,"inactivity_prob":0.01},{"horizon_s":1.0,"inactivity_prob":0.02},'
    '{"horizon_s":2.0,"inactivity_prob":0.03},{"horizon_s":3.0,"inactivity_prob":0.04}],'
    '"step_idx":%d,"step_duration_s":0.08,"total_duration_s":%.2f}'
)


def run_server() -> None:
    """The body of the server process: serve until killed, the port on the first line of standard output."""
    import picows

    class Session(picows.WSListener):  # type: ignore[misc]
        steps = 0

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type is not picows.WSMsgType.TEXT:
                if frame.msg_type is picows.WSMsgType.CLOSE:
                    transport.disconnect()
                return
            kind = json.loads(frame.get_payload_as_bytes())["type"]
            if kind == "audio":
                self.steps += 1
                transport.send(picows.WSMsgType.TEXT, (STEP % (self.steps - 1, self.steps * CHUNK_S)).encode())
                if self.steps % 10 == 0:
                    word = {"type": "text", "text": "word", "start_s": round(self.steps * CHUNK_S - 0.5, 2)}
                    transport.send(picows.WSMsgType.TEXT, json.dumps(word).encode())
            elif kind == "setup":
                ready = {"type": "ready", "request_id": "bench", "model_name": "default", "sample_rate": RATE,
                         "frame_size": 1920, "delay_in_frames": 10, "text_stream_names": []}  # fmt: skip
                transport.send(picows.WSMsgType.TEXT, json.dumps(ready).encode())
            elif kind == "end_of_stream":
                transport.send(picows.WSMsgType.TEXT, b'{"type":"end_of_stream"}')
                transport.send_close(picows.WSCloseCode.OK)
                transport.disconnect()

    async def serve() -> None:
        server = await picows.ws_create_server(lambda request: Session(), "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


async def client(port: int, streams: int, seconds: float) -> dict[str, Any]:
    """N paced streams through speechbridge; every chunk's lag after the warm-up."""
    from speechbridge_gradium.stt import GradiumSTT

    chunk = array("h", (round(7000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(1920))).tobytes()
    stt = GradiumSTT(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/api", turn_detection=False)
    lags: list[float] = []
    counts: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    start = loop.time() + 1.0

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, start - 1.0 + index / streams - loop.time()))
        async with stt.stream(format=f"pcm_{RATE}") as stream:

            async def read() -> None:
                async for event in stream:
                    counts[type(event).__name__] += 1

            reader = asyncio.create_task(read())
            due = start + (index % 16) * CHUNK_S / 16
            for _ in range(round(seconds / CHUNK_S)):
                now = loop.time()
                if now < due:
                    await asyncio.sleep(due - now)
                await stream.send_audio(chunk)
                if due >= start + WARM_UP_S:
                    lags.append(loop.time() - due)
                due += CHUNK_S
            await stream.end()
            await reader

    cpu = time.process_time()
    async with stt:
        await asyncio.gather(*(one(index) for index in range(streams)))
    return {"lags": lags, "cpu_s": time.process_time() - cpu, "counts": counts}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--levels", default="100,200,300,400,500,600,800,1000", help="stream counts to try, in order")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per stream (default 10)")
    parser.add_argument("--engine", choices=("picows", "websockets"), default="picows", help="WebSocket engine")
    parser.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        run_server()
        return
    if args.role == "client":
        os.environ["SPEECHBRIDGE_WEBSOCKET"] = args.engine
        print(json.dumps(asyncio.run(client(args.port, args.streams, args.seconds))))
        return
    server = subprocess.Popen([sys.executable, __file__, "--role", "server"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print(f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
              f"{args.engine} engine, {args.seconds:g} s of audio per stream\n")  # fmt: skip
        print("| streams | p50 lag | p99 lag | worst lag | client CPU | events | p99 < 20 ms |")
        print("|---|---|---|---|---|---|---|")
        best = 0
        for level in (int(value) for value in args.levels.split(",")):
            command = [sys.executable, __file__, "--role", "client", "--port", str(port), "--streams", str(level),
                       "--seconds", str(args.seconds), "--engine", args.engine]  # fmt: skip
            run = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            lags = run["lags"]
            p99 = percentile(lags, 0.99)
            ok = p99 < LAG_TARGET_S
            cpu = run["cpu_s"] / args.seconds
            events = sum(run["counts"].values())
            shown = " | ".join(f"{value * 1000:.1f} ms" for value in (percentile(lags, 0.5), p99, max(lags)))
            print(f"| {level} | {shown} | {cpu:.0%} of a core | {events} | {'yes' if ok else 'no'} |", flush=True)
            if not ok:
                break
            best = level
        verdict = "ok" if best >= 500 else "MISSED"
        print(f"\nLargest level with p99 lag < 20 ms: {best} streams (target >= 500: {verdict})")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
