"""Scripted providers: deterministic STT and TTS test doubles that do real work on real audio.

:class:`ScriptedSTT` hears the words of its script: it measures the level of every 80 ms of audio, and each
``ms_per_word`` of voiced audio uncovers the next word of the script. Words are interim until a flush, the end of the
stream or a stretch of silence (which also ends the turn) makes them final. Silence uncovers nothing. Given a
``vocabulary`` instead, it hears words from the audio itself: each tone :class:`ToneSpeaker` speaks is named by its
pitch, so what it hears depends on the audio only, not on how much came before (a reconnecting stream's replay is
heard the same).

:class:`ScriptedTTS` speaks each whitespace-separated word as a tone whose length follows the word's length and
whose pitch follows its letters (:func:`tone_frequency`), with silent gaps between words and exact word timings.

Both run with the core dependencies alone when no resampling or G.711 conversion is asked for. They are not in the
default registry: use :func:`speechbridge.testing.scripted_registry` or the pytest fixtures.
"""

from __future__ import annotations

import math
import operator
import re
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Final

import attrs

from ..audio import AudioFormat, PCMAudio, decode, encode, resample
from ..errors import ConfigError
from ..events import (
    Flushed,
    Ready,
    SpeechStarted,
    StreamEnded,
    STTEvent,
    Transcript,
    TurnEnded,
    VADUpdate,
    Word,
    WordTiming,
)
from ..settings import between, one_of
from ..stt import STTCapabilities, STTProvider, STTStream
from ..tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

__all__ = [
    "ScriptedRecognizer",
    "ScriptedSTT",
    "ScriptedSTTSettings",
    "ScriptedTTS",
    "ScriptedTTSSettings",
    "ToneSpeaker",
    "level_dbfs",
    "speak_phrases",
    "tone_frequency",
]

ANALYSIS_FRAME_S: Final = 0.08
SILENCE_DBFS: Final = -120.0
INACTIVITY_HORIZONS_S: Final = (0.5, 1.0, 2.0)
STT_RATES: Final = (8000, 16000, 24000, 48000)
TTS_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
OPUS_RATES: Final = (8000, 12000, 16000, 24000, 48000)
WAVEFORMS: Final = {"sine": "sine tones", "square": "square-wave tones"}
TONE_AMPLITUDE: Final = 0.3 * 32767
TONE_RAMP_S: Final = 0.005
TONE_BASE_HZ: Final = 180
TONE_STEP_HZ: Final = 25
TONE_PITCHES: Final = 16
TONE_GAP_S: Final = 0.03  # this much silence ends a tone
MIN_TONE_S: Final = 0.02  # shorter tones are clicks, not words
# indexed by the high byte of a 16-bit little-endian sample: "0" if the sample is within 256 of zero; "-" if negative
_ACTIVITY: Final = bytes(ord("0") if high in (0x00, 0xFF) else ord("1") for high in range(256))
_SIGNS: Final = b"+" * 128 + b"-" * 128


def tone_frequency(word: str) -> float:
    """The pitch :class:`ToneSpeaker` speaks ``word`` at: one of 16 steps of 25 Hz from 180 Hz, by its letters."""
    return float(TONE_BASE_HZ + (sum(map(ord, word)) % TONE_PITCHES) * TONE_STEP_HZ)


def _samples(pcm16: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(pcm16)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm16(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def level_dbfs(pcm16: bytes) -> float:
    """The RMS level of 16-bit PCM in dB below full scale; digital silence is -120."""
    samples = _samples(pcm16)
    if not samples:
        return SILENCE_DBFS
    mean_square = sum(map(operator.mul, samples, samples)) / len(samples)
    if mean_square == 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10 * math.log10(mean_square / 32768**2))


def _script_words(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Iterable) and all(isinstance(item, str) for item in value):
        return tuple(word for item in value for word in item.split())
    raise ConfigError(f"script must be text or a list of words, not {type(value).__name__}")


def _is_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be True or False, not {value!r}")


def _is_text_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{attribute.name} must be text such as 'en', not {value!r}")


# --- STT ------------------------------------------------------------------------------------------------------


@attrs.frozen
class ScriptedSTTSettings:
    """Options of :class:`ScriptedSTT`: a ``script`` heard in order, or a ``vocabulary`` heard by pitch."""

    script: tuple[str, ...] = attrs.field(default=(), converter=_script_words)
    ms_per_word: float = attrs.field(default=300.0, validator=between(10, 10_000))
    sample_rate: int = attrs.field(default=16000, validator=one_of(*STT_RATES))
    vad_threshold_db: float = attrs.field(default=-40.0, validator=between(-100, 0))
    turn_silence_ms: float = attrs.field(default=500.0, validator=between(80, 60_000))
    interim_results: bool = attrs.field(default=True, validator=_is_bool)
    language: str | None = attrs.field(default=None, validator=_is_text_or_none)
    vocabulary: tuple[str, ...] = attrs.field(default=(), converter=_script_words)

    @vocabulary.validator
    def _check_vocabulary(self, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        if value and self.script:
            raise ConfigError("give a script (words heard in order) or a vocabulary (words heard by pitch), not both")
        pitches: dict[float, str] = {}
        for word in value:
            other = pitches.setdefault(tone_frequency(word), word)
            if other != word:
                raise ConfigError(
                    f"vocabulary words {other!r} and {word!r} are spoken at the same pitch "
                    f"({tone_frequency(word):g} Hz), so they cannot be told apart: keep one of them"
                )


class ScriptedRecognizer:
    """The sans-IO core of :class:`ScriptedSTT`: 16-bit PCM at ``settings.sample_rate`` in, STT events out."""

    def __init__(self, settings: ScriptedSTTSettings) -> None:
        self.settings = settings
        self.rate = settings.sample_rate
        self._frame_bytes = round(ANALYSIS_FRAME_S * self.rate) * 2
        self._word_samples = settings.ms_per_word * self.rate / 1000
        self._buffer = bytearray()
        self._samples_seen = 0
        self._next_word = 0
        self._credit = 0.0  # voiced samples heard towards the next word; negative after rounding a word up
        self._word_start: float | None = None
        self._last_voiced_end = 0.0
        self._pending: list[Word] = []
        self._turn_text: list[str] = []
        self._in_speech = False
        self._silence_s = 0.0
        self.voiced_samples = 0
        self._words_by_pitch = {tone_frequency(word): word for word in settings.vocabulary}
        self._tone: bytearray | None = None  # the samples of the tone being heard (vocabulary mode)
        self._tone_start = 0  # ... and the sample it started at
        self._gap_samples = round(TONE_GAP_S * self.rate)

    def feed(self, pcm16: bytes) -> list[STTEvent]:
        """Take audio (whole samples); return the events of every complete 80 ms analysis frame."""
        self._buffer += pcm16
        events: list[STTEvent] = []
        whole = len(self._buffer) - len(self._buffer) % self._frame_bytes
        for start in range(0, whole, self._frame_bytes):
            events += self._analyse(bytes(self._buffer[start : start + self._frame_bytes]))
        del self._buffer[:whole]
        return events

    def finish(self) -> list[STTEvent]:
        """Analyse what is buffered and make the words heard so far final (flush or end of audio)."""
        events = self._analyse(bytes(self._buffer)) if self._buffer else []
        self._buffer.clear()
        return events + self._finalize()

    def _analyse(self, frame: bytes) -> list[STTEvent]:
        count = len(frame) // 2
        start = self._samples_seen / self.rate
        self._samples_seen += count
        end = self._samples_seen / self.rate
        level = level_dbfs(frame)
        voiced = level >= self.settings.vad_threshold_db
        events: list[STTEvent] = []
        if voiced and not self._in_speech:
            self._in_speech = True
            events.append(SpeechStarted(start))
        if self._words_by_pitch:
            events += self._listen(frame, self._samples_seen - count)
        if voiced:
            self._silence_s = 0.0
            self.voiced_samples += count
            self._last_voiced_end = end
            if not self._words_by_pitch:
                events += self._hear(count, start, end)
        else:
            self._silence_s += count / self.rate
        speech_prob = 1 / (1 + math.exp(-(level - self.settings.vad_threshold_db) / 2))
        inactivity = tuple((h, round(self._silence_s / (self._silence_s + h), 4)) for h in INACTIVITY_HORIZONS_S)
        events.append(VADUpdate(end, round(speech_prob, 4), inactivity))
        if self._in_speech and self._silence_s * 1000 >= self.settings.turn_silence_ms:
            self._in_speech = False
            events += self._finalize()
            events.append(TurnEnded(" ".join(self._turn_text), "silence", end))
            self._turn_text = []
        return events

    def _hear(self, count: int, start: float, end: float) -> list[STTEvent]:
        if self._next_word >= len(self.settings.script):
            return []
        if self._word_start is None:
            self._word_start = start
        self._credit += count
        heard = False
        while self._credit >= self._word_samples - 1e-6 and self._next_word < len(self.settings.script):
            overflow = max(0.0, self._credit - self._word_samples)
            word_end = end - overflow / self.rate
            self._take_word(word_end)
            self._credit = overflow
            self._word_start = word_end if overflow > 0 else None
            heard = True
        if not (heard and self.settings.interim_results):
            return []
        return [self._transcript(is_final=False)]

    def _listen(self, frame: bytes, first_sample: int) -> list[STTEvent]:
        """Vocabulary mode: cut the audio into tones at gaps of silence, and name each tone by its pitch."""
        if self._tone is None:
            onset = frame[1::2].translate(_ACTIVITY).find(b"1")
            if onset < 0:
                return []
            self._tone, self._tone_start = bytearray(frame[2 * onset :]), first_sample + onset
        else:
            self._tone += frame
        heard = False
        while self._tone is not None:
            activity = self._tone[1::2].translate(_ACTIVITY)
            gap = activity.find(b"0" * self._gap_samples)
            if gap < 0:
                break
            heard |= self._name_tone(bytes(self._tone[: 2 * gap]))
            onset = activity.find(b"1", gap)
            if onset < 0:
                self._tone = None
            else:
                self._tone, self._tone_start = self._tone[2 * onset :], self._tone_start + onset
        if not (heard and self.settings.interim_results):
            return []
        return [self._transcript(is_final=False)]

    def _name_tone(self, tone: bytes) -> bool:
        """Add the vocabulary word spoken as ``tone`` (starting at ``_tone_start``); whether there was one."""
        signs = tone[1::2].translate(_SIGNS)
        rises = signs.count(b"-+")
        if len(tone) // 2 < MIN_TONE_S * self.rate or rises < 2:
            return False
        span = signs.rfind(b"-+") - signs.find(b"-+")
        frequency = (rises - 1) * self.rate / span
        pitch = min(self._words_by_pitch, key=lambda candidate: abs(candidate - frequency))
        if abs(pitch - frequency) > TONE_STEP_HZ / 2:
            return False
        start = self._tone_start / self.rate
        self._pending.append(Word(self._words_by_pitch[pitch], start, start + len(tone) / 2 / self.rate))
        return True

    def _take_word(self, end: float) -> None:
        assert self._word_start is not None
        self._pending.append(Word(self.settings.script[self._next_word], self._word_start, end))
        self._next_word += 1

    def _finalize(self) -> list[STTEvent]:
        if self._tone is not None:  # a tone cut short by a flush or the end of the audio
            last = self._tone[1::2].translate(_ACTIVITY).rfind(b"1")
            self._name_tone(bytes(self._tone[: 2 * (last + 1)]))
            self._tone = None
        half_heard = self._credit >= self._word_samples / 2
        if self._word_start is not None and half_heard and self._next_word < len(self.settings.script):
            self._take_word(max(self._last_voiced_end, self._word_start))
            self._credit -= self._word_samples
            self._word_start = None
        if not self._pending:
            return []
        final = self._transcript(is_final=True)
        self._turn_text.append(final.text)
        self._pending = []
        return [final]

    def _transcript(self, *, is_final: bool) -> Transcript:
        words = tuple(self._pending)
        return Transcript(
            " ".join(word.text for word in words),
            is_final,
            words[0].start_s,
            words[-1].end_s,
            words,
            language=self.settings.language,
        )


class ScriptedSTTStream(STTStream):
    """A live session of :class:`ScriptedSTT`."""

    def __init__(self, provider: str, format: AudioFormat, settings: ScriptedSTTSettings) -> None:
        super().__init__(provider, format=format, wire_format=AudioFormat.pcm16(settings.sample_rate))
        self._recognizer = ScriptedRecognizer(settings)

    async def _open(self) -> None:
        self._emit(Ready(sample_rate=self.wire_format.sample_rate))

    async def _send_frame(self, frame: bytes) -> None:
        self._emit_all(self._recognizer.feed(frame))

    async def _send_flush(self, flush_id: int) -> None:
        self._emit_all(self._recognizer.finish())
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        self._emit_all(self._recognizer.finish())
        self._emit(StreamEnded())

    def _emit_all(self, events: list[STTEvent]) -> None:
        for event in events:
            self._emit(event)


class ScriptedSTT(STTProvider[ScriptedSTTSettings]):
    """Hears its ``script``, one word per ``ms_per_word`` of voiced audio.

    >>> stt = ScriptedSTT(script="hello world", ms_per_word=250)
    """

    name: ClassVar[str] = "scripted"
    Settings: ClassVar[type[Any]] = ScriptedSTTSettings
    capabilities: ClassVar[STTCapabilities] = STTCapabilities(
        interim_results=True,
        word_timestamps=True,
        flush=True,
        vad=True,
        turn_detection=True,
        sample_rates=STT_RATES,
    )

    @classmethod
    def for_audio(cls, audio: PCMAudio, script: str | Iterable[str], **options: Any) -> ScriptedSTT:
        """A scripted STT that hears exactly ``script`` over ``audio``: ``ms_per_word`` is fitted to its voiced time."""
        settings: ScriptedSTTSettings = cls(script=script, **options).settings
        if audio.sample_rate != settings.sample_rate:
            audio = resample(audio, settings.sample_rate)
        recognizer = ScriptedRecognizer(settings)
        recognizer.feed(audio.data)
        recognizer.finish()
        if not settings.script or not recognizer.voiced_samples:
            raise ConfigError("cannot fit a script to audio: the script is empty or the audio has no voiced part")
        ms_per_word = recognizer.voiced_samples / settings.sample_rate * 1000 / len(settings.script)
        return cls(**{**attrs.asdict(settings), "ms_per_word": ms_per_word})

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: ScriptedSTTSettings) -> Transcript:
        pcm = decode(audio, format)
        if pcm.sample_rate != settings.sample_rate:
            pcm = resample(pcm, settings.sample_rate)
        recognizer = ScriptedRecognizer(settings)
        events = recognizer.feed(pcm.data) + recognizer.finish()
        words = tuple(w for e in events if isinstance(e, Transcript) and e.is_final for w in e.words)
        return Transcript(
            " ".join(word.text for word in words),
            True,
            words[0].start_s if words else None,
            words[-1].end_s if words else None,
            words,
            language=settings.language,
        )

    def _stream(self, format: AudioFormat, settings: ScriptedSTTSettings) -> STTStream:
        return ScriptedSTTStream(self.name, format, settings)


# --- TTS ------------------------------------------------------------------------------------------------------


@attrs.frozen
class ScriptedTTSSettings:
    """Options of :class:`ScriptedTTS`; durations are divided by ``speed``."""

    voice: str = attrs.field(default="sine", validator=one_of(*WAVEFORMS))
    sample_rate: int = attrs.field(default=24000, validator=one_of(*TTS_RATES))
    speed: float = attrs.field(default=1.0, validator=between(0.25, 4.0))
    ms_per_char: float = attrs.field(default=60.0, validator=between(1, 1000))
    gap_ms: float = attrs.field(default=120.0, validator=between(0, 5000))


class ToneSpeaker:
    """The sans-IO core of :class:`ScriptedTTS`: words in, 16-bit PCM and exact word timings out.

    Each word is a tone of ``len(word) * ms_per_char`` whose pitch follows its letters; a gap of silence comes
    before every word but the first.
    """

    def __init__(self, settings: ScriptedTTSSettings) -> None:
        self.settings = settings
        self.rate = settings.sample_rate
        self.samples_out = 0

    def speak(self, word: str) -> tuple[bytes, WordTiming]:
        seconds_per_unit = 1 / 1000 / self.settings.speed
        gap = round(self.settings.gap_ms * seconds_per_unit * self.rate) if self.samples_out else 0
        length = max(1, round(len(word) * self.settings.ms_per_char * seconds_per_unit * self.rate))
        start = self.samples_out + gap
        self.samples_out = start + length
        timing = WordTiming(word, start / self.rate, self.samples_out / self.rate)
        return bytes(2 * gap) + self._tone(length, tone_frequency(word)), timing

    def _tone(self, length: int, frequency: float) -> bytes:
        step = 2 * math.pi * frequency / self.rate
        ramp = max(1, min(round(TONE_RAMP_S * self.rate), length // 2))
        square = self.settings.voice == "square"
        samples = array("h", bytes(2 * length))
        for i in range(length):
            wave = math.sin(i * step)
            if square:
                wave = math.copysign(1.0, wave)
            envelope = min(1.0, (i + 1) / ramp, (length - i) / ramp)
            samples[i] = round(TONE_AMPLITUDE * envelope * wave)
        return _pcm16(samples)


def speak_phrases(
    phrases: Iterable[Sequence[str]], *, pause_s: float, settings: ScriptedTTSSettings | None = None
) -> tuple[PCMAudio, tuple[float, ...]]:
    """``phrases`` (each a list of words) spoken by a :class:`ToneSpeaker`, each followed by ``pause_s`` of silence;
    the audio and the time each pause ends. Heard back word for word by ``ScriptedSTT(vocabulary=...)``."""
    settings = settings or ScriptedTTSSettings()
    audio, ends = bytearray(), []
    for phrase in phrases:
        speaker = ToneSpeaker(settings)  # each phrase starts at once, without the gap between words
        audio += b"".join(speaker.speak(word)[0] for word in phrase) + bytes(2 * round(pause_s * settings.sample_rate))
        ends.append(len(audio) / 2 / settings.sample_rate)
    return PCMAudio(bytes(audio), settings.sample_rate), tuple(ends)


class ScriptedTTSStream(TTSStream):
    """A live session of :class:`ScriptedTTS`: each word is spoken once the whitespace after it arrives."""

    def __init__(self, provider: str, format: AudioFormat, settings: ScriptedTTSSettings) -> None:
        super().__init__(provider, format=format, native_format=AudioFormat.pcm16(settings.sample_rate))
        self._speaker = ToneSpeaker(settings)
        self._text = ""

    async def _open(self) -> None:
        self._emit(Ready(sample_rate=self.native_format.sample_rate))

    async def _send_text(self, text: str) -> None:
        self._text += text
        partial = re.search(r"\S*$", self._text)
        assert partial is not None
        self._speak(self._text[: partial.start()].split())
        self._text = partial.group()

    async def _send_flush(self, flush_id: int) -> None:
        self._speak(self._text.split())
        self._text = ""
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        self._speak(self._text.split())
        self._text = ""
        self._emit_audio_end()
        self._emit(StreamEnded())

    def _speak(self, words: list[str]) -> None:
        for word in words:
            pcm, timing = self._speaker.speak(word)
            self._emit(timing)
            self._emit_audio(pcm)


class ScriptedTTS(TTSProvider[ScriptedTTSSettings]):
    """Speaks words as tones, deterministically, with exact word timings.

    >>> tts = ScriptedTTS(voice="square", sample_rate=16000)
    """

    name: ClassVar[str] = "scripted"
    Settings: ClassVar[type[Any]] = ScriptedTTSSettings
    capabilities: ClassVar[TTSCapabilities] = TTSCapabilities(word_timestamps=True, sample_rates=TTS_RATES)
    default_format: ClassVar[AudioFormat] = AudioFormat("wav")

    async def voices(self) -> list[Voice]:
        return [Voice(voice_id, text.capitalize(), description=text) for voice_id, text in WAVEFORMS.items()]

    async def _synthesize(self, text: str, format: AudioFormat, settings: ScriptedTTSSettings) -> Synthesis:
        speaker = ToneSpeaker(settings)
        spoken = [speaker.speak(word) for word in text.split()]
        audio = PCMAudio(b"".join(pcm for pcm, _ in spoken), settings.sample_rate)
        rate = format.sample_rate or settings.sample_rate
        if format.encoding == "ogg_opus" and rate not in OPUS_RATES:
            rate = 48000
        return Synthesis(
            encode(audio, attrs.evolve(format, sample_rate=rate)),
            attrs.evolve(format, sample_rate=rate),
            tuple(timing for _, timing in spoken),
            audio.duration_s,
        )

    def _stream(self, format: AudioFormat, settings: ScriptedTTSSettings) -> TTSStream:
        return ScriptedTTSStream(self.name, format, settings)
