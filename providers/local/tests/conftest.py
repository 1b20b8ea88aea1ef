"""Engines load once per session; test speech is made by the local TTS itself."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence

import jiwer
import numpy as np
import pytest
from speechbridge_local import LocalSTT, LocalTTS

SENTENCES = (
    "My sister is moving to a new apartment next month.",
    "The library opens at eight in the morning.",
    "Could you send me the invoice by email?",
    "We walked along the river until the sun went down.",
    "The children were playing in the garden after school.",
    "He forgot his umbrella on the bus yesterday.",
    "Our flight was delayed because of the storm.",
    "Please remember to water the plants on Sunday.",
    "The doctor said I should drink more water.",
    "They are building a new bridge across the valley.",
    "I have never seen such a beautiful sunset.",
    "The coffee shop on the corner sells fresh bread.",
)


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


@pytest.fixture(scope="session")
def tts() -> LocalTTS:
    return LocalTTS()


@pytest.fixture(scope="session")
def stt() -> LocalSTT:
    return LocalSTT()


@pytest.fixture(scope="session")
def speech(tts: LocalTTS) -> dict[str, bytes]:
    """Each of the test sentences, in order, spoken as 16 kHz 16-bit PCM."""

    async def speak_all() -> dict[str, bytes]:
        return {text: (await tts.synthesize(text, format="pcm_16000")).audio for text in SENTENCES}

    return asyncio.run(speak_all())


@pytest.fixture(scope="session")
def wer() -> Callable[[Sequence[str], Sequence[str]], float]:
    """Corpus word error rate after lower-casing and stripping punctuation."""

    def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
        return float(jiwer.wer([normalize(r) for r in references], [normalize(h) or "<empty>" for h in hypotheses]))

    return corpus_wer


@pytest.fixture(scope="session")
def pause() -> Callable[[float], bytes]:
    """Digital silence of the given length as 16 kHz 16-bit PCM."""

    def silence(seconds: float) -> bytes:
        return b"\0\0" * round(seconds * 16000)

    return silence


@pytest.fixture(scope="session")
def cut_in_the_middle() -> Callable[[bytes], bytes]:
    """A spoken sentence up to the quietest 50 ms of its middle third: a pause between two of its words."""

    def cut(pcm: bytes) -> bytes:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        blocks = samples[: len(samples) // 800 * 800].reshape(-1, 800)
        first, last = len(blocks) // 3, 2 * len(blocks) // 3
        quietest = first + int(np.argmin(np.mean(blocks[first:last] ** 2, axis=1)))
        return pcm[: quietest * 800 * 2]

    return cut
