"""Gradium's semantic VAD (``step`` messages) derived from whatever voice activity a backend reports.

Gradium sends one ``step`` per 80 ms of audio, each with the probability that the speaker stays silent for the next
0.5, 1, 2 and 3 seconds. A backend that predicts inactivity itself (``VADUpdate.inactivity_prob``) is passed through,
interpolated to those horizons. Otherwise the prediction comes from the length of the current silence ``s`` (speech
resets it): ``p(h) = (1 - speech_prob) * (1 - exp(-s / (0.25 * h)))``, which rises with the silence and falls with
the horizon: 0.5 s of silence gives 0.98 at 0.5 s, 0.63 at 2 s and 0.49 at 3 s; 1.2 s of silence gives 0.91 at 2 s.
A backend with no voice activity at all is measured here: a frame is speech when its level is above -40 dBFS.

That model hears silence only, where Gradium's is semantic: it knows a finished sentence from a pause in the middle
of one. Given a turn-completion model (:data:`speechbridge.turns.TurnCompletion`, such as Smart Turn from the local
backend), the audio is scored once per silence that follows speech, at its first step, with the probability ``c``
that the turn is over (a model run on every step would cost an inference every 80 ms per stream). The prediction
becomes a mixture: the turn is over and the speaker stays silent (``c``), or it is a pause that the silence model
above describes (``1 - c``):
``p(h) = (1 - speech_prob) * (c + (1 - c) * (1 - exp(-s / (0.25 * h))))``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import operator
import sys
from array import array
from typing import Any, Final

from speechbridge.events import VADUpdate
from speechbridge.turns import CompletionCue, TurnCompletion

from ..protocol import FRAME_S, VAD_HORIZONS_S, server_step

__all__ = ["InactivityModel"]

TAU_PER_HORIZON: Final = 0.25
SPEECH_DBFS: Final = -40.0
EPSILON_S: Final = 1e-6


def _interpolate(points: tuple[tuple[float, float], ...], horizon: float) -> float:
    """The value at ``horizon`` of the piecewise-linear curve through ``points`` (flat beyond its ends)."""
    if horizon <= points[0][0]:
        return points[0][1]
    for (h0, p0), (h1, p1) in itertools.pairwise(points):
        if horizon <= h1:
            return p0 + (p1 - p0) * (horizon - h0) / (h1 - h0) if h1 > h0 else p1
    return points[-1][1]


def _level_dbfs(pcm16: bytes) -> float:
    samples = array("h")
    samples.frombytes(pcm16[: len(pcm16) - len(pcm16) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return -120.0
    mean_square = sum(map(operator.mul, samples, samples)) / len(samples)
    return 10 * math.log10(mean_square / 32768**2) if mean_square else -120.0


class InactivityModel:
    """Voice activity in (backend updates or raw PCM), ``step`` messages out, one per 80 ms of audio."""

    def __init__(self, completion: TurnCompletion | None = None) -> None:
        self.steps_sent = 0
        self.speech_prob = 0.0
        self.silence_s = 0.0
        self.completion_prob = 0.0  # of the current silence, once scored
        self._completion = completion
        self._cue = CompletionCue() if completion is not None else None
        self._due: tuple[bytes, int] | None = None  # audio to score before the next step goes out
        self._time_s = 0.0
        self._predicted: tuple[tuple[float, float], ...] = ()
        self._level_buffer = bytearray()

    def inactivity(self) -> tuple[float, ...]:
        """The probability of staying silent for each horizon of :data:`VAD_HORIZONS_S`, as of now."""
        if self._predicted:
            return tuple(round(min(1.0, max(0.0, _interpolate(self._predicted, h))), 4) for h in VAD_HORIZONS_S)
        quiet, over = 1.0 - self.speech_prob, self.completion_prob
        return tuple(
            round(quiet * (over + (1.0 - over) * (1.0 - math.exp(-self.silence_s / (TAU_PER_HORIZON * h)))), 4)
            for h in VAD_HORIZONS_S
        )

    def hear(self, pcm16: bytes, sample_rate: int) -> None:
        """Keep the latest audio for the turn-completion model (nothing is kept without one)."""
        if self._cue is not None:
            self._cue.hear(pcm16, sample_rate)

    async def judge(self) -> None:
        """Score the turn's completion on a worker thread, once per silence that follows speech."""
        if self._due is None:
            return
        assert self._completion is not None
        audio, self._due = self._due, None
        self.completion_prob = await asyncio.to_thread(self._completion, *audio)

    def observe(self, update: VADUpdate) -> None:
        """A backend's voice activity for the audio up to ``update.time_s``."""
        self._advance(update.time_s, update.speech_prob)
        self._predicted = tuple(sorted(update.inactivity_prob))

    def observe_pcm(self, pcm16: bytes, sample_rate: int) -> None:
        """Measure voice activity from the audio itself, 80 ms at a time (for backends that report none)."""
        frame = round(FRAME_S * sample_rate) * 2
        self._level_buffer += pcm16
        while len(self._level_buffer) >= frame:
            level = _level_dbfs(bytes(self._level_buffer[:frame]))
            del self._level_buffer[:frame]
            speech_prob = 1 / (1 + math.exp(-(level - SPEECH_DBFS) / 2))
            self._advance(self._time_s + frame / 2 / sample_rate, speech_prob)

    def _advance(self, time_s: float, speech_prob: float) -> None:
        elapsed = max(0.0, time_s - self._time_s)
        self._time_s = max(self._time_s, time_s)
        self.speech_prob = speech_prob
        is_speech = speech_prob >= 0.5
        if is_speech:
            self.silence_s, self.completion_prob, self._due = 0.0, 0.0, None
        else:
            self.silence_s += elapsed
        if self._cue is not None:
            self._due = self._cue.step(is_speech) or self._due

    def steps_until(self, time_s: float, *, partial: bool = False) -> list[dict[str, Any]]:
        """The steps for every 80 ms frame that ends by ``time_s`` (and one for a shorter last frame if ``partial``)."""
        frames = time_s / FRAME_S
        due = math.ceil(frames - EPSILON_S) if partial else math.floor(frames + EPSILON_S)
        steps = []
        inactivity = self.inactivity()
        while self.steps_sent < due:
            steps.append(server_step(self.steps_sent, inactivity))
            self.steps_sent += 1
        return steps

    @property
    def time_s(self) -> float:
        """How far the voice activity is known."""
        return self._time_s
