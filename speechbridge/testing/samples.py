"""Speech samples for tests: audio of speech with the words spoken in it, and a loose way to compare words."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

import attrs

from ..audio import AudioFormat, PCMAudio, decode
from ..tts import TTSProvider

__all__ = ["DEFAULT_TEXT", "SpeechSample", "make_speech_sample", "word_overlap", "words_of"]

DEFAULT_TEXT: Final = "the quick brown fox jumps over the lazy dog"


def words_of(text: str) -> tuple[str, ...]:
    """The words of ``text``, lower-cased, without punctuation."""
    return tuple(re.findall(r"[a-z0-9']+", text.lower()))


def word_overlap(expected: Iterable[str], heard: str) -> float:
    """The share of ``expected`` words (counted with repeats) that occur in ``heard``; 1.0 when none are expected."""
    wanted = Counter(word for item in expected for word in words_of(item))
    if not wanted:
        return 1.0
    found = wanted & Counter(words_of(heard))
    return sum(found.values()) / sum(wanted.values())


@attrs.frozen
class SpeechSample:
    """Audio of speech, and the words spoken in it (lower-case, no punctuation)."""

    audio: PCMAudio
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


async def make_speech_sample(
    tts: TTSProvider[Any], text: str = DEFAULT_TEXT, *, sample_rate: int = 16000, padding_s: float = 0.3
) -> SpeechSample:
    """Speak ``text`` with the TTS provider ``tts``, as 16-bit PCM at ``sample_rate`` with silence on both sides."""
    synthesis = await tts.synthesize(text, format=AudioFormat.pcm16(sample_rate))
    speech = decode(synthesis.audio, synthesis.format)
    padding = bytes(2 * round(padding_s * sample_rate))
    return SpeechSample(PCMAudio(padding + speech.data + padding, sample_rate), words_of(text))
