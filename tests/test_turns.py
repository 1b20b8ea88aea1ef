from __future__ import annotations

import pytest

from speechbridge.errors import ConfigError
from speechbridge.turns import SilenceTurnDetector, TurnSignal


def feed(detector: SilenceTurnDetector, pattern: str, step_s: float = 0.1) -> list[TurnSignal]:
    """Feed one step per character: 'S' speech, '.' silence."""
    signals = [detector.update(char == "S", step_s) for char in pattern]
    return [signal for signal in signals if signal is not None]


def test_turn_ends_after_the_silence_that_follows_speech() -> None:
    detector = SilenceTurnDetector(0.5)
    signals = feed(detector, "..SSS....")
    assert signals == [TurnSignal("speech_started", pytest.approx(0.2))]
    assert detector.in_speech
    assert feed(detector, ".") == [TurnSignal("turn_ended", pytest.approx(0.5))]  # where the speech stopped
    assert not detector.in_speech
    assert detector.time_s == pytest.approx(1.0)


def test_speech_inside_the_silence_restarts_the_wait() -> None:
    detector = SilenceTurnDetector(0.3)
    assert [s.kind for s in feed(detector, "SS..S..S..")] == ["speech_started"]
    assert feed(detector, ".") == [TurnSignal("turn_ended", pytest.approx(0.8))]


def test_silence_alone_never_ends_a_turn() -> None:
    detector = SilenceTurnDetector(0.2)
    assert feed(detector, "." * 50) == []


def test_short_bursts_do_not_start_speech() -> None:
    detector = SilenceTurnDetector(0.3, min_speech_s=0.25)
    assert feed(detector, "S..S..SS..") == []
    assert feed(detector, "SSS") == [TurnSignal("speech_started", pytest.approx(1.0))]


def test_several_turns_in_a_row() -> None:
    detector = SilenceTurnDetector(0.2, min_speech_s=0.1)
    kinds = [(s.kind, round(s.time_s, 6)) for s in feed(detector, "SS...SSS...", step_s=0.08)]
    assert kinds == [("speech_started", 0.0), ("turn_ended", 0.16), ("speech_started", 0.4), ("turn_ended", 0.64)]


def test_steps_of_any_length() -> None:
    detector = SilenceTurnDetector(0.8)
    assert detector.update(True, 0.02) == TurnSignal("speech_started", 0.0)
    assert detector.update(False, 0.5) is None
    assert detector.update(False, 0.5) == TurnSignal("turn_ended", pytest.approx(0.02))


def test_reset_forgets_the_turn_in_progress() -> None:
    detector = SilenceTurnDetector(0.2)
    feed(detector, "SS.")
    detector.reset()
    assert not detector.in_speech
    assert feed(detector, "....") == []
    assert detector.time_s == pytest.approx(0.7)


@pytest.mark.parametrize("silence_s", [0, -1.0])
def test_silence_must_be_positive(silence_s: float) -> None:
    with pytest.raises(ConfigError, match="silence_s"):
        SilenceTurnDetector(silence_s)


def test_negative_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="duration_s"):
        SilenceTurnDetector(0.5).update(True, -0.1)
