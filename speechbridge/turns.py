"""End-of-turn policies: when did the speaker start talking, and when have they finished a turn?

A policy is a small state machine with no I/O and no clock of its own: a stream feeds it one step of voice activity
at a time and acts on the :class:`TurnSignal` it returns (emit ``SpeechStarted``, finalise the text, emit
``TurnEnded``). Times are seconds of stream audio, counted from the first step.

:class:`SilenceTurnDetector` serves providers whose only signal is a plain speech / no-speech VAD (webrtcvad in the
local backend): a turn ends after a fixed stretch of silence that follows speech.

:class:`SemanticTurnDetector` serves providers with a predictive VAD (Gradium's ``step`` messages): a turn ends when
the model predicts the speaker will stay silent over a horizon, once some text of the turn is pending. The stream then
flushes and ends the turn when the provider confirms that flush.

A :data:`TurnCompletion` model (Smart Turn, in the local backend) judges from the sound whether a turn is over;
:class:`CompletionCue` says when to ask it and what it hears.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeAlias

import attrs

from .errors import ConfigError

__all__ = ["CompletionCue", "SemanticTurnDetector", "SilenceTurnDetector", "TurnCompletion", "TurnSignal"]

TurnCompletion: TypeAlias = Callable[[bytes, int], float]
"""The probability that the speaker's turn is over, given the latest 16-bit mono PCM and its sample rate."""


@attrs.frozen
class TurnSignal:
    """What a policy decided at one step.

    ``speech_started``: ``time_s`` is where the speech began. ``turn_ended``: ``time_s`` is where the speech stopped
    (the signal itself comes once the silence after it is long enough).
    """

    kind: Literal["speech_started", "turn_ended"]
    time_s: float


class SilenceTurnDetector:
    """A turn ends after ``silence_s`` of non-speech that follows speech.

    Speech counts as started once ``min_speech_s`` of consecutive speech steps were seen, so a lone click or cough
    shorter than that starts nothing.
    """

    def __init__(self, silence_s: float, *, min_speech_s: float = 0.0) -> None:
        if not silence_s > 0:
            raise ConfigError(f"silence_s must be a positive number of seconds, not {silence_s!r}")
        if not min_speech_s >= 0:
            raise ConfigError(f"min_speech_s must be zero or more seconds, not {min_speech_s!r}")
        self.silence_s = silence_s
        self.min_speech_s = min_speech_s
        self.time_s = 0.0
        self._in_speech = False
        self._run_start: float | None = None  # start of the current run of speech (idle) or of silence (speaking)

    @property
    def in_speech(self) -> bool:
        """True between ``speech_started`` and ``turn_ended``."""
        return self._in_speech

    def update(self, is_speech: bool, duration_s: float) -> TurnSignal | None:
        """Feed one step of ``duration_s`` seconds that the VAD judged speech or not; return a decision, if any."""
        if duration_s < 0:
            raise ValueError(f"duration_s must not be negative, not {duration_s!r}")
        start, end = self.time_s, self.time_s + duration_s
        self.time_s = end
        if is_speech != self._in_speech:
            if self._run_start is None:
                self._run_start = start
            needed = self.min_speech_s if is_speech else self.silence_s
            if end - self._run_start >= needed - 1e-9:  # tolerate float sums of step lengths
                run_start, self._run_start = self._run_start, None
                self._in_speech = is_speech
                return TurnSignal("speech_started" if is_speech else "turn_ended", run_start)
        else:
            self._run_start = None
        return None

    def end_turn(self) -> TurnSignal | None:
        """End the turn now, if it is in a silence after its speech (another judge, such as a turn-completion model,
        decided it is over); ``time_s`` is where the silence began."""
        if not self._in_speech or self._run_start is None:
            return None
        run_start, self._run_start = self._run_start, None
        self._in_speech = False
        return TurnSignal("turn_ended", run_start)

    def reset(self) -> None:
        """Forget the turn in progress, if any (the stream time keeps running)."""
        self._in_speech = False
        self._run_start = None


class SemanticTurnDetector:
    """A turn ends when the inactivity probability at ``horizon_s`` is at least ``threshold`` for ``steps``
    consecutive steps while text of the turn is pending.

    The probability is read from the entry whose horizon is nearest ``horizon_s``. After a flush (the one this policy
    asks for, or any other the stream sends: call :meth:`flush_sent`) VAD is ignored for ``cooldown_s`` of stream time,
    since a flush makes the model's predictions unreliable for a few steps.
    """

    def __init__(
        self, horizon_s: float = 2.0, *, threshold: float = 0.5, steps: int = 1, cooldown_s: float = 0.64
    ) -> None:
        if not horizon_s > 0:
            raise ConfigError(f"horizon_s must be a positive number of seconds, not {horizon_s!r}")
        if not 0 <= threshold <= 1:
            raise ConfigError(f"threshold must be a probability from 0 to 1, not {threshold!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps must be a whole number of at least 1, not {steps!r}")
        if not cooldown_s >= 0:
            raise ConfigError(f"cooldown_s must be zero or more seconds, not {cooldown_s!r}")
        self.horizon_s = horizon_s
        self.threshold = threshold
        self.steps = steps
        self.cooldown_s = cooldown_s
        self.time_s = 0.0
        self._quiet_until: float | None = None
        self._run_start: float | None = None  # time of the first step of the current inactive run
        self._run_steps = 0
        self._chosen = -1  # the index of the pair used, for steps of ``_pairs`` pairs whose horizon there is
        self._pairs = 0
        self._chosen_horizon = 0.0

    def update(
        self, time_s: float, inactivity: Sequence[tuple[float, float]], *, has_pending_text: bool
    ) -> TurnSignal | None:
        """Feed the step ending at ``time_s`` with its ``(horizon_s, inactivity_prob)`` pairs.

        Returns ``turn_ended`` (``time_s`` is the first step of the inactive run) when the caller should flush and end
        the turn; the cooldown starts at once.
        """
        if not inactivity:
            raise ValueError("a step needs at least one (horizon_s, inactivity_prob) pair")
        self.time_s = time_s
        if self._quiet_until is not None and time_s <= self._quiet_until + 1e-9:
            return None
        if not has_pending_text or inactivity[self._horizon_index(inactivity)][1] < self.threshold:
            self._run_start, self._run_steps = None, 0
            return None
        if self._run_start is None:
            self._run_start = time_s
        self._run_steps += 1
        if self._run_steps < self.steps:
            return None
        signal = TurnSignal("turn_ended", self._run_start)
        self.flush_sent()
        return signal

    def _horizon_index(self, inactivity: Sequence[tuple[float, float]]) -> int:
        """Which pair has the horizon nearest ``horizon_s``: worked out on the first step, and again when the number
        of pairs or the horizon at the chosen index changes (servers send the same horizons on every step)."""
        chosen = self._chosen
        if len(inactivity) == self._pairs and inactivity[chosen][0] == self._chosen_horizon:
            return chosen
        chosen = min(range(len(inactivity)), key=lambda index: abs(inactivity[index][0] - self.horizon_s))
        self._chosen, self._pairs, self._chosen_horizon = chosen, len(inactivity), inactivity[chosen][0]
        return chosen

    def flush_sent(self) -> None:
        """A flush went out after the latest step: ignore the next ``cooldown_s`` of steps."""
        self._quiet_until = self.time_s + self.cooldown_s
        self._run_start, self._run_steps = None, 0

    def reset(self) -> None:
        """Forget the inactive run and any cooldown (the stream time keeps running)."""
        self._quiet_until = None
        self._run_start, self._run_steps = None, 0


class CompletionCue:
    """When to ask a :data:`TurnCompletion` model, and with what: once per silence that follows speech, at its first
    silent step, with the latest ``window_s`` seconds of audio (Smart Turn hears 8 s)."""

    def __init__(self, window_s: float = 8.0) -> None:
        self.window_s = window_s
        self._audio = bytearray()
        self._sample_rate = 0
        self._armed = False  # speech was heard, and the silence after it was not put to the model yet

    def hear(self, pcm16: bytes, sample_rate: int) -> None:
        """Keep the latest audio."""
        self._audio += pcm16
        self._sample_rate = sample_rate
        del self._audio[: max(0, len(self._audio) - round(self.window_s * sample_rate) * 2)]

    def step(self, is_speech: bool) -> tuple[bytes, int] | None:
        """After one step of voice activity: the audio and its rate to score now, or None."""
        if is_speech or not self._armed:
            self._armed = self._armed or is_speech
            return None
        self._armed = False
        return bytes(self._audio), self._sample_rate
