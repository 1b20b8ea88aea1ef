"""pocketsphinx and webrtcvad over one 16 kHz audio stream, with no I/O and no event loop.

:class:`Recognizer` turns frames of 16-bit audio into speechbridge events. It blocks while it decodes, so streams run
it on a worker thread of their own; one recognizer is used by one thread at a time.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Final, Literal

from speechbridge.events import SpeechStarted, STTEvent, Transcript, TurnEnded, VADUpdate, Word
from speechbridge.turns import CompletionCue, SilenceTurnDetector, TurnCompletion

from .settings import LocalSTTSettings

if TYPE_CHECKING:
    from pocketsphinx import Decoder  # type: ignore[import-untyped]

__all__ = ["SAMPLE_RATE", "DecoderPool", "Recognizer"]

SAMPLE_RATE: Final = 16_000
FRAMES_PER_SECOND: Final = 100  # pocketsphinx segment frames
VAD_STEP_BYTES: Final = SAMPLE_RATE // 50 * 2  # webrtcvad judges 20 ms at a time
FRAME_BYTES: Final = SAMPLE_RATE // 1000 * 80 * 2  # 80 ms, as streams send
SPEECH_SHARE: Final = 0.5  # a frame is speech when at least this share of its VAD steps is
MIN_SPEECH_S: Final = 0.15  # shorter bursts (clicks, breaths) do not start a turn
MAX_IDLE_UTTERANCE_S: Final = 30.0  # a silent stretch this long closes the utterance, bounding decoder memory
COMPLETE: Final = 0.5  # a turn-completion probability at least this ends the turn
_VARIANT = re.compile(r"\(\d+\)$")


def _is_filler(word: str) -> bool:
    return not word or word.startswith(("<", "[", "+"))


class DecoderPool:
    """Loaded pocketsphinx decoders kept for reuse: loading one takes a few tenths of a second.

    Decoders skip pocketsphinx's second (flat-lexicon) pass: as accurate on our round-trip sets, a quarter faster.
    """

    def __init__(self, max_idle: int = 2) -> None:
        self.max_idle = max_idle
        self._idle: list[Decoder] = []
        self._lock = threading.Lock()

    def acquire(self) -> Decoder:
        """An idle decoder with its feature normalisation reset, or a newly loaded one (blocks while loading)."""
        with self._lock:
            if self._idle:
                decoder = self._idle.pop()
                decoder.reinit_feat()
                return decoder
        from pocketsphinx import Decoder

        return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", fwdflat=False)

    def release(self, decoder: Decoder) -> None:
        """Give a decoder back; it must be outside an utterance."""
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(decoder)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()


class Recognizer:
    """Decode a live 16 kHz stream into transcripts, voice activity and turns ended by silence, or by ``completion``
    (the probability that the turn is over, given the latest audio) judged at the first silent frame after speech.

    A final transcript closes each pocketsphinx utterance: at a turn's end, at ``finish()`` (flush and end of
    stream), and after a long silence. ``live`` decodes audio as it arrives, learning the cepstral mean as it goes;
    otherwise each utterance is decoded once it is complete, normalised over all of it (more accurate, and the
    same cost, for recordings). A final whose text is empty is reported only when it has an interim
    transcript to retract; otherwise nothing is said. A turn in which nothing was recognised ends without
    ``TurnEnded``.
    """

    def __init__(
        self,
        decoder: Decoder,
        settings: LocalSTTSettings,
        *,
        live: bool,
        interim_results: bool,
        completion: TurnCompletion | None = None,
    ) -> None:
        import numpy
        import webrtcvad  # type: ignore[import-untyped]

        self._np: Any = numpy
        self._decoder = decoder
        self._vad = webrtcvad.Vad(settings.vad_aggressiveness)
        self._rng = numpy.random.default_rng(0)
        self._dither = float(settings.dither)
        self._language = settings.language
        self._live = live
        self._interim_results = live and interim_results
        self._held: list[bytes] = []  # the utterance's audio, when not live
        self._turns = SilenceTurnDetector(settings.silence_ms / 1000, min_speech_s=MIN_SPEECH_S)
        self._completion = completion
        self._cue = CompletionCue()
        self._vad_pending = b""
        self._last_speech_prob = 0.0
        self._samples = 0  # fed to the decoder since the stream started
        self._utterance_start = 0
        self._interim = ""
        self._turn_texts: list[str] = []
        self._decoder.start_utt()
        self._in_utterance = True

    @property
    def time_s(self) -> float:
        return self._samples / SAMPLE_RATE

    def feed(self, frame: bytes) -> list[STTEvent]:
        """Decode one frame of 16-bit mono audio; return the events it caused."""
        events: list[STTEvent] = []
        noisy = self._dithered(self._np.frombuffer(frame, dtype="<i2")).tobytes()
        speech_prob = self._speech_share(frame)
        if self._live:
            self._decoder.process_raw(noisy, full_utt=False)
        else:
            self._held.append(noisy)
        self._samples += len(frame) // 2
        events.append(VADUpdate(self.time_s, speech_prob))
        signal = self._turns.update(speech_prob >= SPEECH_SHARE, len(frame) / 2 / SAMPLE_RATE)
        reason: Literal["silence", "semantic_vad"] = "silence"
        if self._completion is not None and self._judged_over(frame, speech_prob) and signal is None:
            signal, reason = self._turns.end_turn(), "semantic_vad"
        if signal is not None and signal.kind == "speech_started":
            events.append(SpeechStarted(signal.time_s))
        if self._interim_results:
            events.extend(self._interim_transcript())
        if signal is not None and signal.kind == "turn_ended":
            events.extend(self._close_utterance())
            if self._turn_texts:
                events.append(TurnEnded(" ".join(self._turn_texts), reason=reason, time_s=signal.time_s))
            self._turn_texts.clear()
        elif self._idle_too_long(speech_prob):
            events.extend(self._close_utterance())
        return events

    def finish(self) -> list[STTEvent]:
        """Close the utterance now (flush or end of stream): its final transcript, if there is one to give."""
        return self._close_utterance()

    def detach(self) -> Decoder:
        """Stop decoding and hand back the decoder, outside any utterance."""
        if self._in_utterance:
            self._decoder.end_utt()
            self._in_utterance = False
        return self._decoder

    def transcribe_all(self, pcm: bytes) -> Transcript:
        """Recognise a whole recording fed at once: one final transcript of every utterance in it."""
        finals: list[Transcript] = []
        for start in range(0, len(pcm), FRAME_BYTES):
            finals.extend(e for e in self.feed(pcm[start : start + FRAME_BYTES]) if isinstance(e, Transcript))
        finals.extend(e for e in self.finish() if isinstance(e, Transcript))
        words = tuple(word for final in finals for word in final.words)
        return Transcript(
            " ".join(word.text for word in words),
            is_final=True,
            start_s=0.0,
            end_s=self.time_s,
            words=words,
            language=self._language,
        )

    def _judged_over(self, frame: bytes, speech_prob: float) -> bool:
        """Whether the completion model, asked at the first silent frame of a turn, judges the turn over."""
        assert self._completion is not None
        self._cue.hear(frame, SAMPLE_RATE)
        due = self._cue.step(speech_prob >= SPEECH_SHARE)
        return due is not None and self._turns.in_speech and self._completion(*due) >= COMPLETE

    def _idle_too_long(self, speech_prob: float) -> bool:
        idle = not self._turns.in_speech and speech_prob < SPEECH_SHARE
        return idle and self._samples - self._utterance_start >= MAX_IDLE_UTTERANCE_S * SAMPLE_RATE

    def _speech_share(self, frame: bytes) -> float:
        data = self._vad_pending + frame
        whole = len(data) - len(data) % VAD_STEP_BYTES
        steps = [data[i : i + VAD_STEP_BYTES] for i in range(0, whole, VAD_STEP_BYTES)]
        self._vad_pending = data[whole:]
        if steps:
            self._last_speech_prob = sum(self._vad.is_speech(step, SAMPLE_RATE) for step in steps) / len(steps)
        return self._last_speech_prob

    def _dithered(self, samples: Any) -> Any:
        if not self._dither:
            return samples
        np = self._np
        noisy = samples + np.rint(self._rng.normal(0.0, self._dither, len(samples)))
        return np.clip(noisy, -32768, 32767).astype("<i2")

    def _interim_transcript(self) -> list[STTEvent]:
        hypothesis = self._decoder.hyp()
        text = hypothesis.hypstr if hypothesis is not None else ""
        if not text or text == self._interim:
            return []
        self._interim = text
        start = self._utterance_start / SAMPLE_RATE
        return [Transcript(text, is_final=False, start_s=start, end_s=self.time_s, language=self._language)]

    def _close_utterance(self) -> list[STTEvent]:
        if self._held:
            self._decoder.process_raw(b"".join(self._held), full_utt=True)
            self._held.clear()
        self._decoder.end_utt()
        offset = self._utterance_start / SAMPLE_RATE
        words = tuple(
            Word(
                _VARIANT.sub("", segment.word),
                offset + segment.start_frame / FRAMES_PER_SECOND,
                offset + (segment.end_frame + 1) / FRAMES_PER_SECOND,
                confidence=min(segment.prob, 1.0),  # a log-domain posterior can round past 1
            )
            for segment in self._decoder.seg() or ()
            if not _is_filler(segment.word)
        )
        had_interim, self._interim = bool(self._interim), ""
        self._utterance_start = self._samples
        self._decoder.start_utt()
        text = " ".join(word.text for word in words)
        if not text and not had_interim:
            return []
        if text:
            self._turn_texts.append(text)
        final = Transcript(text, is_final=True, start_s=offset, end_s=self.time_s, words=words, language=self._language)
        return [final]
