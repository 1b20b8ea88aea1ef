"""The one event vocabulary every provider speaks.

STT streams yield :data:`STTEvent`; TTS streams yield :data:`TTSEvent`. Times are seconds from the start of
the stream's audio.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

from .audio import AudioFormat

__all__ = [
    "AudioChunk",
    "Flushed",
    "ProviderSwitched",
    "Ready",
    "Reconnected",
    "STTEvent",
    "SpeechStarted",
    "StreamEnded",
    "TTSEvent",
    "Transcript",
    "TurnEnded",
    "VADUpdate",
    "Word",
    "WordTiming",
]


@attrs.frozen
class Word:
    """One recognised word with its place in the audio."""

    text: str
    start_s: float
    end_s: float
    confidence: float | None = None


@attrs.frozen
class Ready:
    """The provider accepted the stream's setup; audio or text may flow."""

    request_id: str | None = None
    sample_rate: int | None = None


@attrs.frozen
class Transcript:
    """Recognised text.

    Interim transcripts (``is_final=False``) each replace the previous interim one; a final transcript commits
    its text, and the next interim starts after it.
    """

    text: str
    is_final: bool
    start_s: float | None = None
    end_s: float | None = None
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    language: str | None = None


@attrs.frozen
class VADUpdate:
    """Voice activity for the audio up to ``time_s``.

    ``speech_prob`` is the probability that the speaker is talking now. ``inactivity_prob`` holds
    ``(horizon_s, probability)`` pairs, ascending by horizon: the probability that the speaker stays silent for the
    next ``horizon_s`` seconds (Gradium's semantic VAD); providers without a predictive VAD leave it empty.
    """

    time_s: float
    speech_prob: float
    inactivity_prob: tuple[tuple[float, float], ...] = ()

    def inactivity_at(self, horizon_s: float) -> float | None:
        """The inactivity probability of the horizon nearest ``horizon_s``, or None without predictions."""
        if not self.inactivity_prob:
            return None
        return min(self.inactivity_prob, key=lambda pair: abs(pair[0] - horizon_s))[1]


@attrs.frozen
class SpeechStarted:
    """The speaker started talking at ``time_s``."""

    time_s: float


@attrs.frozen
class TurnEnded:
    """The speaker finished a turn; ``text`` is the turn's whole final text."""

    text: str
    reason: Literal["silence", "semantic_vad", "vendor"]
    time_s: float | None = None


@attrs.frozen
class Flushed:
    """Everything sent before the matching ``flush()`` has been processed and its results delivered."""

    flush_id: int


@attrs.frozen
class Reconnected:
    """The connection dropped and a new session took over; events after it come from the new session.

    ``attempt`` counts the tries in a row it took (from 1). ``replayed_s`` is the audio sent again because no final
    text covered it yet; ``lost_s`` is audio that was needed but had already been released (past
    ``Reliability.replay_limit_s``), so its words may be missing. ``reason`` is the error that ended the old session.
    """

    attempt: int
    replayed_s: float = 0.0
    lost_s: float = 0.0
    reason: str | None = None


@attrs.frozen
class ProviderSwitched:
    """A fallback stream (``FallbackSTT`` / ``FallbackTTS``) moved to the next provider of its chain; events after it
    come from ``provider``.

    ``previous`` failed with ``reason``. ``time_s`` is where ``provider`` took over in the stream's timeline. STT:
    ``replayed_s`` seconds of audio that no final transcript covered were sent to ``provider`` again, and ``lost_s``
    more had already been released (past ``replay_limit_s``). TTS: ``resent_text`` is the text given to ``provider``
    again, from the first word whose audio was not completely delivered.
    """

    provider: str
    previous: str
    reason: str
    time_s: float
    replayed_s: float = 0.0
    lost_s: float = 0.0
    resent_text: str = ""


@attrs.frozen
class StreamEnded:
    """The last event of a stream: everything was delivered."""


@attrs.frozen
class AudioChunk:
    """Synthesised audio in ``format``."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    format: AudioFormat


@attrs.frozen
class WordTiming:
    """When a synthesised word is spoken in the output audio."""

    text: str
    start_s: float
    end_s: float


STTEvent: TypeAlias = (
    Ready | Transcript | VADUpdate | SpeechStarted | TurnEnded | Flushed | Reconnected | ProviderSwitched | StreamEnded
)
TTSEvent: TypeAlias = Ready | AudioChunk | WordTiming | Flushed | Reconnected | ProviderSwitched | StreamEnded
