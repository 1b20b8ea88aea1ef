"""Offline text-to-speech: hibari and the voice inside its wheel."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from speechbridge.audio import AudioFormat, PCMAudio, encode
from speechbridge.errors import ConfigError, ProviderError, SpeechBridgeError
from speechbridge.events import Flushed, Ready, StreamEnded
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

from .settings import LocalTTSSettings, offline_voices

if TYPE_CHECKING:
    import numpy as np
    from hibari import Hibari  # type: ignore[import-untyped]

__all__ = ["LocalTTS", "LocalTTSStream"]

SAMPLE_RATE: Final = 24_000
THREADS: Final = 2
T = TypeVar("T")


class LocalTTS(TTSProvider[LocalTTSSettings]):
    """hibari-tts: about 170x real time on two cores, 24 kHz, no network, no key.

    The model loads on first use and is shared by every call and stream of this provider; syntheses run one at a
    time. hibari reports no phoneme durations, so there are no word timings.
    """

    name = "local"
    Settings = LocalTTSSettings
    capabilities = TTSCapabilities(
        batch=True,
        streaming=True,
        word_timestamps=False,
        languages=("en",),
        sample_rates=(SAMPLE_RATE,),
    )
    default_format = AudioFormat.pcm16(SAMPLE_RATE)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._engines: dict[str, Hibari] = {}
        self._lock = threading.Lock()

    async def voices(self) -> list[Voice]:
        from hibari.voices import VOICES  # type: ignore[import-untyped]

        return [
            Voice(
                name,
                name.title(),
                language=VOICES[name]["language"],
                description=f"{VOICES[name]['accent']} English, {VOICES[name]['gender']}; ships inside hibari-tts",
            )
            for name in offline_voices()
        ]

    async def _synthesize(self, text: str, format: AudioFormat, settings: LocalTTSSettings) -> Synthesis:
        return await asyncio.to_thread(self._synthesize_now, text, format, settings)

    def _synthesize_now(self, text: str, format: AudioFormat, settings: LocalTTSSettings) -> Synthesis:
        import numpy

        rng = numpy.random.default_rng(settings.seed)
        pcm = b"".join(self.render(phonemes, settings, rng) for phonemes in self.phonemize(text, settings))
        if not pcm:
            raise ConfigError(f"nothing to speak in {text!r}: it has no pronounceable words", provider=self.name)
        audio = encode(PCMAudio(pcm, SAMPLE_RATE), format)
        out_format = format if format.sample_rate else attrs.evolve(format, sample_rate=SAMPLE_RATE)
        return Synthesis(audio, out_format, duration_s=len(pcm) / 2 / SAMPLE_RATE)

    def _stream(self, format: AudioFormat, settings: LocalTTSSettings) -> LocalTTSStream:
        return LocalTTSStream(self, format, settings)

    def engine(self, voice: str) -> Hibari:
        """The loaded model of ``voice`` (loads it on first use; blocks meanwhile)."""
        with self._lock:
            if voice not in self._engines:
                self._engines[voice] = _engine_call(_load, voice)
            return self._engines[voice]

    def phonemize(self, text: str, settings: LocalTTSSettings) -> list[str]:
        """The phoneme strings of ``text``, one per sentence, leaving out punctuation alone (blocks)."""
        engine = self.engine(settings.voice)
        with self._lock:
            sentences = _engine_call(engine.phonemize, text)
        return [phonemes for phonemes in sentences if any(char.isalpha() for char in phonemes)]

    def render(self, phonemes: str, settings: LocalTTSSettings, rng: np.random.Generator) -> bytes:
        """One sentence's phonemes as 16-bit 24 kHz audio (blocks)."""
        import numpy

        engine = self.engine(settings.voice)
        with self._lock:
            samples = _engine_call(engine.from_ids, engine.ids(phonemes), settings.speed, rng)
        return numpy.clip(numpy.rint(samples * 32767.0), -32768, 32767).astype("<i2").tobytes()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        with self._lock:
            self._engines.clear()


class LocalTTSStream(TTSStream):
    """Live synthesis: text is buffered and spoken a sentence at a time, as soon as the next sentence has begun
    (so "Dr. Smith" is not cut at the period). ``flush()`` and ``end()`` speak what is left.

    Synthesis runs on a worker thread, in order; the audio is the same as ``synthesize()`` gives for the same text.
    """

    def __init__(self, provider: LocalTTS, format: AudioFormat, settings: LocalTTSSettings) -> None:
        super().__init__(provider.name, format=format, native_format=AudioFormat.pcm16(SAMPLE_RATE))
        self._owner = provider
        self.settings = settings
        self._text = ""
        self._jobs: asyncio.Queue[str | int | None] = asyncio.Queue()  # text to speak, a flush id, or None: the end

    async def _open(self) -> None:
        await asyncio.to_thread(self._owner.engine, self.settings.voice)
        self._spawn(self._speak())
        self._emit(Ready(sample_rate=self.format.sample_rate))

    async def _send_text(self, text: str) -> None:
        from hibari import Hibari

        self._text += text
        sentences = Hibari.split_sentences(self._text)
        if len(sentences) > 1:
            cut = self._text.rfind(sentences[-1])
            self._jobs.put_nowait(self._text[:cut])
            self._text = self._text[cut:]

    async def _send_flush(self, flush_id: int) -> None:
        self._jobs.put_nowait(self._take_rest())
        self._jobs.put_nowait(flush_id)

    async def _send_end(self) -> None:
        self._jobs.put_nowait(self._take_rest())
        self._jobs.put_nowait(None)

    def _take_rest(self) -> str:
        rest, self._text = self._text, ""
        return rest

    async def _speak(self) -> None:
        import numpy

        rng = numpy.random.default_rng(self.settings.seed)
        while True:
            job = await self._jobs.get()
            if isinstance(job, str):
                if job.strip():
                    for phonemes in await asyncio.to_thread(self._owner.phonemize, job, self.settings):
                        self._emit_audio(await asyncio.to_thread(self._owner.render, phonemes, self.settings, rng))
            elif isinstance(job, int):
                self._emit(Flushed(job))
            else:
                self._emit_audio_end()
                self._emit(StreamEnded())
                return


def _load(voice: str) -> Hibari:
    from hibari import Hibari

    engine = Hibari(voice=voice, threads=THREADS)
    engine.g2p  # noqa: B018 - load the lexicons now rather than inside the first synthesis
    return engine


def _engine_call(function: Callable[..., T], *args: Any) -> T:
    """Call into hibari, turning its failures into a speechbridge error."""
    try:
        return function(*args)
    except SpeechBridgeError:
        raise
    except Exception as exc:
        raise ProviderError(f"the hibari engine failed: {exc}", provider=LocalTTS.name) from exc
