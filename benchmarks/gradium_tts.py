"""The Gradium TTS client: time to first audio against a bare WebSocket client, and multiplexed against one socket each.

    .venv/bin/python benchmarks/gradium_tts.py [--requests N] [--concurrent C] [--rounds R]

A Gradium server (``make_app`` over ``ScriptedTTS`` at 16 kHz, asked for ``pcm_16000`` so that the front converts
nothing) runs in a process of its own; the clients run in this one, and every figure is taken on this process
(``time.monotonic`` and ``time.process_time``). speechbridge uses its default WebSocket engine (printed with the
table: ``picows`` when it is installed, else ``websockets``).

1. **Time to first audio.** ``N`` requests (default 100) one after another, speechbridge and a bare client taking
   turns, each on a new socket: from the call that opens it to the first audio the caller holds. speechbridge:
   ``GradiumTTS().stream(format="pcm_16000")``, ``send_text``, ``end``, and the first ``AudioChunk`` of its
   ``async for``. The bare client does the same request with ``websockets`` and ``json`` alone: connect, ``setup``
   (the same message speechbridge sends), wait for ``ready``, ``text``, ``end_of_stream``, then base64-decode the
   first ``audio``; its socket negotiates no compression, as speechbridge's does not. Both read the request to its
   ``end_of_stream``. The difference is taken request by request.
2. **Multiplexing.** ``C`` short requests (default 16, the most a shared socket takes) start at once, ``R`` rounds
   (default 5) taking turns between ``GradiumTTS(multiplex=True)``, whose requests share a socket, and the default
   of one socket per request. Per round: the wall time until every request has all its audio, each request's time
   to first audio from the start of the round, this process's CPU time, and the sockets it opened (WebSockets the
   server accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import time
from typing import Any, Final

import httpx
from server_process import serve_and_announce, server_process
from speechbridge_gradium.server import make_app
from speechbridge_gradium.settings import DEFAULT_VOICE_ID
from speechbridge_gradium.tts import GradiumTTS
from websockets.asyncio.client import connect

from speechbridge.events import AudioChunk
from speechbridge.testing.scripted import ScriptedTTS
from speechbridge.websocket import default_engine

__all__ = ["main"]

API_KEY: Final = "benchmark-key"
RATE: Final = 16000
TEXT: Final = "Your table for two is booked at eight tonight."
SHORT_TEXT: Final = "One moment please."
SOCKETS_PATH: Final = "/benchmark/sockets"


# --- 1. time to first audio --------------------------------------------------------------------------------------


async def speechbridge_request(tts: GradiumTTS) -> tuple[float, int]:
    """Seconds to the first audio, and the audio bytes received."""
    start = time.monotonic()
    first = None
    received = 0
    async with tts.stream(format=f"pcm_{RATE}") as stream:
        await stream.send_text(TEXT)
        await stream.end()
        async for event in stream:
            if isinstance(event, AudioChunk):
                first = first or time.monotonic()
                received += len(event.data)
    if first is None:
        raise RuntimeError("speechbridge's request brought no audio")
    return first - start, received


async def bare_request(url: str) -> tuple[float, int]:
    """The same request with ``websockets`` and ``json`` alone."""
    start = time.monotonic()
    first = None
    received = 0
    headers = {"x-api-key": API_KEY}
    async with connect(url + "/api/speech/tts", additional_headers=headers, compression=None) as websocket:
        setup = {"type": "setup", "model_name": "default", "output_format": f"pcm_{RATE}", "voice_id": DEFAULT_VOICE_ID}
        await websocket.send(json.dumps(setup))
        if json.loads(await websocket.recv())["type"] != "ready":
            raise RuntimeError("the bare client got no 'ready'")
        await websocket.send(json.dumps({"type": "text", "text": TEXT}))
        await websocket.send(json.dumps({"type": "end_of_stream"}))
        async for frame in websocket:
            message = json.loads(frame)
            if message["type"] == "audio":
                audio = base64.b64decode(message["audio"])
                first = first or time.monotonic()
                received += len(audio)
            elif message["type"] == "end_of_stream":
                break
    if first is None:
        raise RuntimeError("the bare client's request brought no audio")
    return first - start, received


async def first_audio(url: str, requests: int) -> tuple[list[float], list[float]]:
    tts = GradiumTTS(api_key=API_KEY, base_url=url + "/api")
    ours, bare = [], []
    async with tts:
        await speechbridge_request(tts)  # warm both paths up before timing
        await bare_request("ws" + url.removeprefix("http"))
        for _ in range(requests):
            took, ours_bytes = await speechbridge_request(tts)
            ours.append(took)
            took, bare_bytes = await bare_request("ws" + url.removeprefix("http"))
            bare.append(took)
            if ours_bytes != bare_bytes:
                raise RuntimeError(f"the clients got different audio: {ours_bytes} and {bare_bytes} bytes")
    return ours, bare


# --- 2. multiplexed against one socket per request ---------------------------------------------------------------


async def sockets_accepted(client: httpx.AsyncClient, url: str) -> int:
    """How many WebSockets the server process has accepted so far."""
    return int((await client.get(url + SOCKETS_PATH)).json())


async def batch(url: str, concurrent: int, *, multiplex: bool) -> dict[str, Any]:
    """``concurrent`` requests at once; wall time, CPU time, first-audio times and sockets of the batch."""
    firsts: list[float] = []
    got: set[object] = set()
    async with httpx.AsyncClient() as counter:
        before = await sockets_accepted(counter, url)
        cpu, start = time.process_time(), time.monotonic()
        tts = GradiumTTS(api_key=API_KEY, base_url=url + "/api", multiplex=multiplex)

        async def one() -> None:
            async with tts.stream(format=f"pcm_{RATE}") as stream:
                await stream.send_text(SHORT_TEXT)
                await stream.end()
                async for event in stream:
                    if isinstance(event, AudioChunk) and stream not in got:
                        got.add(stream)
                        firsts.append(time.monotonic() - start)

        async with tts:
            await asyncio.gather(*(one() for _ in range(concurrent)))
        wall, cpu = time.monotonic() - start, time.process_time() - cpu
        sockets = await sockets_accepted(counter, url) - before
    if len(firsts) != concurrent:
        raise RuntimeError(f"{concurrent - len(firsts)} requests brought no audio")
    return {"wall_s": wall, "cpu_s": cpu, "first_s": statistics.median(firsts), "sockets": sockets}


async def multiplexing(url: str, concurrent: int, rounds: int) -> list[dict[str, dict[str, Any]]]:
    await batch(url, concurrent, multiplex=True)  # warm-up
    results = []
    for _ in range(rounds):
        results.append({
            "multiplexed": await batch(url, concurrent, multiplex=True),
            "one socket each": await batch(url, concurrent, multiplex=False),
        })  # fmt: skip
    return results


# --- the server process ------------------------------------------------------------------------------------------


def counting_sockets(app: Any) -> Any:
    """``app`` with a count of the WebSockets it accepted, served at :data:`SOCKETS_PATH`."""
    accepted = 0

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        nonlocal accepted
        if scope["type"] == "http" and scope["path"] == SOCKETS_PATH:
            body = str(accepted).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "websocket":
            accepted += 1
        await app(scope, receive, send)

    return counted


def run_server() -> None:
    app = counting_sockets(make_app(None, ScriptedTTS(sample_rate=RATE)))
    serve_and_announce(app)


# --- the table ---------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report(args: argparse.Namespace, ours: list[float], bare: list[float], rounds: list[dict[str, Any]]) -> None:
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.requests} requests each way for the first audio; {args.concurrent} concurrent requests x "
        f"{args.rounds} rounds for multiplexing; texts {TEXT!r} and {SHORT_TEXT!r}; "
        f"speechbridge's WebSocket engine: {default_engine()}"
    )
    print()
    added = [mine - theirs for mine, theirs in zip(ours, bare, strict=True)]
    ratios = [mine / theirs for mine, theirs in zip(ours, bare, strict=True)]
    print("| what | median | spread |")
    print("|---|---|---|")
    print(f"| time to first audio, new socket, speechbridge | {ms(statistics.median(ours))} | "
          f"{ms(min(ours))} to {ms(max(ours))} |")  # fmt: skip
    print(f"| time to first audio, new socket, websockets + json | {ms(statistics.median(bare))} | "
          f"{ms(min(bare))} to {ms(max(bare))} |")  # fmt: skip
    print(f"| added by speechbridge (per request) | {ms(statistics.median(added))} | "
          f"{ms(min(added))} to {ms(max(added))} |")  # fmt: skip
    print(f"| ratio speechbridge / bare | {statistics.median(ratios):.2f} | {min(ratios):.2f} to {max(ratios):.2f} |")
    print()
    modes = ("multiplexed", "one socket each")
    print(f"| {args.concurrent} requests at once | " + " | ".join(modes) + " | ratio multiplexed / one socket each |")
    print("|---|---|---|---|")
    rows = (("wall_s", "wall time until all audio", ms), ("first_s", "median time to first audio", ms),
            ("cpu_s", "client CPU time", ms), ("sockets", "sockets opened", "{:g}".format))  # fmt: skip
    for key, name, unit in rows:
        medians = [statistics.median(result[mode][key] for result in rounds) for mode in modes]
        ratio = statistics.median(result[modes[0]][key] / result[modes[1]][key] for result in rounds)
        print(f"| {name} | " + " | ".join(unit(value) for value in medians) + f" | {ratio:.2f} |")


async def run(url: str, args: argparse.Namespace) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    ours, bare = await first_audio(url, args.requests)
    return ours, bare, await multiplexing(url, args.concurrent, args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=100, help="requests each way for the first audio (default 100)")
    parser.add_argument("--concurrent", type=int, default=16, help="requests at once when multiplexing (default 16)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each multiplexing mode (default 5)")
    parser.add_argument("--role", choices=("server",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        run_server()
        return
    with server_process(__file__) as (url, _):
        ours, bare, rounds = asyncio.run(run(url, args))
    report(args, ours, bare, rounds)


if __name__ == "__main__":
    main()
