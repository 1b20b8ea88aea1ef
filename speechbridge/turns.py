"""End-of-turn policies: when did the speaker start talking, and when have they finished a turn?

A policy is a small state machine with no I/O and no clock of its own: a stream feeds it one step of voice activity
at a time and acts on the :class:`TurnSignal` it returns (emit ``SpeechStarted``, finalise the text, emit
``TurnEnded``). Times are seconds of stream audio, counted from the first step.

:class:`SilenceTurnDetector` serves providers whose only signal is a plain speech / no-speech VAD (webrtcvad in the
local backend): a turn ends after a fixed stretch of silence that follows speech.
"""

from __future__ import annotations

from typing import Literal

import attrs

from .errors import ConfigError

__all__ = ["SilenceTurnDetector", "TurnSignal"]


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

    def reset(self) -> None:
        """Forget the turn in progress, if any (the stream time keeps running)."""
        self._in_speech = False
        self._run_start = None
