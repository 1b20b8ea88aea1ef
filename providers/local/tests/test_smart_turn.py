"""Smart Turn hears a finished sentence from one cut off in the middle (the model is fetched by ``dev.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from speechbridge_local.smart_turn import MODEL_PATH, SmartTurn, fetch, log_mel

from speechbridge.audio import PCMAudio, resample
from speechbridge.errors import ConfigError


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn.load()


def test_a_finished_sentence_scores_high_and_a_cut_one_low(
    smart_turn: SmartTurn, speech: dict[str, bytes], cut_in_the_middle: Callable[[bytes], bytes]
) -> None:
    lead, tail = bytes(16000 * 2), bytes(3200)  # 1 s before, 100 ms after
    finished = [smart_turn.completion(lead + pcm + tail, 16000) for pcm in speech.values()]
    assert min(finished) > 0.8
    for text in ("Could you send me the invoice by email?", "The children were playing in the garden after school."):
        assert smart_turn.completion(lead + cut_in_the_middle(speech[text]) + tail, 16000) < 0.2, text


def test_any_sample_rate_and_length(smart_turn: SmartTurn, speech: dict[str, bytes]) -> None:
    pcm = next(iter(speech.values()))
    at_16k = smart_turn.completion(pcm, 16000)
    at_24k = smart_turn.completion(resample(PCMAudio(pcm, 16000), 24000).data, 24000)
    assert at_24k == pytest.approx(at_16k, abs=0.05)
    long = smart_turn.completion(bytes(20 * 16000 * 2) + pcm, 16000)  # only the last 8 s count
    assert long == pytest.approx(at_16k, abs=0.05)
    assert 0.0 <= smart_turn.completion(b"", 16000) <= 1.0


def test_features_are_whispers_log_mel() -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(8 * 16000) / 16000).astype(np.float32)
    features = log_mel(tone)
    assert features.shape == (80, 800) and features.dtype == np.float32
    loudest_band = int(np.argmax(features[:, 400]))
    assert 8 <= loudest_band <= 12  # 440 Hz falls in the ninth to eleventh of 80 Slaney mel bands
    assert features.min() >= features.max() - 2.0  # the dynamic range is clamped to 8 decades, scaled by 1/4


def test_a_missing_or_broken_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not at .*speechbridge_local\.smart_turn"):
        SmartTurn.load(tmp_path / "absent.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="is not a Smart Turn ONNX model"):
        SmartTurn.load(broken)


def test_fetch_keeps_a_model_that_is_already_there() -> None:
    before = MODEL_PATH.stat().st_mtime_ns
    assert fetch() == MODEL_PATH and MODEL_PATH.stat().st_mtime_ns == before
