from __future__ import annotations

import pytest

from speechbridge.errors import ConfigError
from speechbridge.turns import CompletionCue, SemanticTurnDetector, SilenceTurnDetector, TurnSignal


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


def test_a_turn_can_be_ended_early_in_its_silence() -> None:
    detector = SilenceTurnDetector(1.0)
    feed(detector, "..SSS")
    assert detector.end_turn() is None  # still talking
    feed(detector, "..")
    assert detector.end_turn() == TurnSignal("turn_ended", pytest.approx(0.5))  # where the speech stopped
    assert not detector.in_speech and detector.end_turn() is None
    assert feed(detector, "..........") == []  # the silence that ended it ends nothing more
    assert feed(detector, "SS") == [TurnSignal("speech_started", pytest.approx(1.7))]


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


def semantic(detector: SemanticTurnDetector, probabilities: str, *, text: bool = True) -> list[TurnSignal]:
    """Feed one 80 ms step per character: a digit d means inactivity d/10 on the 2 s horizon (0.0 elsewhere)."""
    signals = []
    for char in probabilities:
        time_s = round(detector.time_s + 0.08, 6)
        pairs = ((0.5, 0.0), (1.0, 0.0), (2.0, int(char) / 10), (3.0, 0.0))
        signals.append(detector.update(time_s, pairs, has_pending_text=text))
    return [signal for signal in signals if signal is not None]


def test_semantic_turn_ends_on_the_chosen_horizon() -> None:
    detector = SemanticTurnDetector()
    assert semantic(detector, "1234") == []
    assert semantic(detector, "5") == [TurnSignal("turn_ended", pytest.approx(0.4))]


def test_semantic_turn_needs_pending_text() -> None:
    assert semantic(SemanticTurnDetector(), "99999", text=False) == []


def test_semantic_turn_needs_consecutive_steps() -> None:
    detector = SemanticTurnDetector(threshold=0.7, steps=3)
    assert semantic(detector, "8818828") == []  # a dip restarts the count
    assert semantic(detector, "88") == [TurnSignal("turn_ended", pytest.approx(0.56))]


def test_semantic_turn_reads_the_nearest_horizon() -> None:
    detector = SemanticTurnDetector(horizon_s=3.0)  # 3.0 s reads the last entry, always 0 here
    assert semantic(detector, "9999") == []
    detector = SemanticTurnDetector(horizon_s=1.8)
    assert semantic(detector, "9") == [TurnSignal("turn_ended", pytest.approx(0.08))]


def test_semantic_turn_ignores_steps_during_the_cooldown() -> None:
    detector = SemanticTurnDetector(cooldown_s=0.64)
    assert len(semantic(detector, "9")) == 1
    assert semantic(detector, "99999999") == []  # 8 steps = 0.64 s ignored
    assert semantic(detector, "9") == [TurnSignal("turn_ended", pytest.approx(0.8))]


def test_any_flush_starts_the_cooldown_and_reset_ends_it() -> None:
    detector = SemanticTurnDetector(cooldown_s=0.24)
    semantic(detector, "0")
    detector.flush_sent()
    assert semantic(detector, "999") == []
    assert len(semantic(detector, "9")) == 1
    detector.reset()
    assert len(semantic(detector, "9")) == 1


@pytest.mark.parametrize(
    ("options", "name"),
    [({"horizon_s": 0}, "horizon_s"), ({"threshold": 1.5}, "threshold"), ({"steps": 0}, "steps"),
     ({"steps": 1.5}, "steps"), ({"cooldown_s": -1}, "cooldown_s")],
)  # fmt: skip
def test_semantic_settings_are_checked(options: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        SemanticTurnDetector(**options)  # type: ignore[arg-type]


def test_a_step_without_predictions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SemanticTurnDetector().update(0.08, (), has_pending_text=True)


def test_a_completion_model_is_cued_once_per_silence_after_speech() -> None:
    cue = CompletionCue(window_s=0.5)
    steps = []
    for index, char in enumerate("..SS...S.S..."):
        cue.hear(bytes([index]) * 1600, 8000)  # 0.1 s a step, each step's bytes its index
        steps.append(cue.step(char == "S"))
    cued = [index for index, audio in enumerate(steps) if audio is not None]
    assert cued == [4, 8, 10]  # the first silent step after each run of speech; leading silence cues nothing
    last = steps[10]
    assert last is not None
    audio, sample_rate = last
    assert sample_rate == 8000 and audio == b"".join(bytes([i]) * 1600 for i in range(6, 11))  # the last 0.5 s
