"""Shared fixtures for the core tests."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from speechbridge import plugins
from speechbridge.audio import AudioFormat, PCMAudio, decode, encode
from speechbridge.events import Flushed, StreamEnded, Transcript, Word, WordTiming
from speechbridge.hookspecs import hookimpl
from speechbridge.plugins import ProviderRegistry, build_registry, plugin_manager
from speechbridge.settings import between, one_of
from speechbridge.stt import STTCapabilities, STTProvider, STTStream
from speechbridge.testing import DEFAULT_TEXT, SpeechSample, make_speech_sample

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # Started as a background job, which ignores Ctrl-C and passes that on to every child: give the processes the
    # tests interrupt on purpose back their KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
from speechbridge.tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice

pytest_plugins = ("pytester",)

CHAR_S = 0.01  # the "code" voice holds each character for 10 ms, then 10 ms of silence


def code_audio(text: str, sample_rate: int = 16000, speed: float = 1.0) -> tuple[bytes, tuple[WordTiming, ...]]:
    """Speak ``text`` in the "code" voice: each character is a run of samples whose value is its code point."""
    run = max(1, round(sample_rate * CHAR_S / speed))
    samples = bytearray()
    words: list[WordTiming] = []
    for index, word in enumerate(text.split(" ")):
        if index:
            samples += _run(" ", run)
        start = len(samples) / 2 / sample_rate
        for char in word:
            samples += _run(char, run)
        words.append(WordTiming(word, start, len(samples) / 2 / sample_rate))
    return bytes(samples), tuple(word for word in words if word.text)


def _run(char: str, length: int) -> bytes:
    return ord(char).to_bytes(2, "little", signed=True) * length + b"\0\0" * length


def read_code(pcm: bytes, sample_rate: int) -> tuple[str, tuple[Word, ...]]:
    """Recover the text (and word times) from "code" audio: one character per run of equal non-zero samples."""
    values = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm) - 1, 2)]
    chars: list[tuple[str, float, float]] = []
    previous = 0
    for index, value in enumerate(values):
        if value != previous and value > 0:
            chars.append((chr(value), index / sample_rate, (index + 1) / sample_rate))
        elif value == previous and value > 0:
            chars[-1] = (chars[-1][0], chars[-1][1], (index + 1) / sample_rate)
        previous = value
    text = "".join(char for char, _, _ in chars)
    words: list[Word] = []
    current: list[tuple[str, float, float]] = []
    for item in [*chars, (" ", 0.0, 0.0)]:
        if item[0] == " ":
            if current:
                words.append(Word("".join(c for c, _, _ in current), current[0][1], current[-1][2]))
            current = []
        else:
            current.append(item)
    return text, tuple(words)


@attrs.frozen
class CodeSTTSettings:
    language: str = attrs.field(default="en", validator=one_of("en", "fr"))
    model: str = "base"
    interim_results: bool = True
    lowercase: bool = False


@attrs.frozen
class CodeTTSSettings:
    language: str = attrs.field(default="en", validator=one_of("en", "fr"))
    voice: str = attrs.field(default="plain", validator=one_of("plain", "shout"))
    speed: float = attrs.field(default=1.0, validator=between(0.5, 4.0))
    sample_rate: int = attrs.field(default=16000, validator=one_of(8000, 16000, 24000))

    ALIASES: ClassVar[dict[str, str]] = {"voice_id": "voice"}


class CodeSTTStream(STTStream):
    def __init__(self, format: AudioFormat, settings: CodeSTTSettings) -> None:
        assert format.sample_rate is not None
        super().__init__("code", format=format, wire_format=AudioFormat.pcm16(format.sample_rate))
        self.settings = settings
        self._pcm = bytearray()
        self._committed = 0

    def _pending_text(self) -> str:
        text, _ = read_code(bytes(self._pcm[self._committed :]), self.wire_format.sample_rate or 16000)
        return text.lower() if self.settings.lowercase else text

    async def _send_frame(self, frame: bytes) -> None:
        self._pcm += frame
        if self.settings.interim_results:
            self._emit(Transcript(self._pending_text(), is_final=False))

    def _commit(self) -> None:
        self._emit(Transcript(self._pending_text(), is_final=True))
        self._committed = len(self._pcm)

    async def _send_flush(self, flush_id: int) -> None:
        self._commit()
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        self._commit()
        self._emit(StreamEnded())


class CodeSTT(STTProvider[CodeSTTSettings]):
    """Reads "code" speech back into text, exactly."""

    name = "code"
    Settings = CodeSTTSettings
    capabilities = STTCapabilities(interim_results=True, word_timestamps=True, flush=True, languages=("en", "fr"))
    closed = 0

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: CodeSTTSettings) -> Transcript:
        pcm = decode(audio, format)
        text, words = read_code(pcm.data, pcm.sample_rate)
        if settings.lowercase:
            text, words = text.lower(), tuple(attrs.evolve(word, text=word.text.lower()) for word in words)
        return Transcript(text, True, 0.0, pcm.duration_s, words, language=settings.language)

    def _stream(self, format: AudioFormat, settings: CodeSTTSettings) -> STTStream:
        return CodeSTTStream(format, settings)

    async def aclose(self) -> None:
        type(self).closed += 1


class CodeTTSStream(TTSStream):
    def __init__(self, format: AudioFormat, settings: CodeTTSSettings) -> None:
        super().__init__("code", format=format, native_format=AudioFormat.pcm16(settings.sample_rate))
        self.settings = settings
        self._text = ""

    async def _send_text(self, text: str) -> None:
        self._text += text

    def _speak_pending(self) -> None:
        if self._text:
            text = self._text.upper() if self.settings.voice == "shout" else self._text
            self._emit_audio(code_audio(text, self.settings.sample_rate, self.settings.speed)[0])
            self._text = ""

    async def _send_flush(self, flush_id: int) -> None:
        self._speak_pending()
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        self._speak_pending()
        self._emit_audio_end()
        self._emit(StreamEnded())


class CodeTTS(TTSProvider[CodeTTSSettings]):
    """Speaks text in the "code" voice, which :class:`CodeSTT` reads back exactly."""

    name = "code"
    Settings = CodeTTSSettings
    capabilities = TTSCapabilities(word_timestamps=True, languages=("en", "fr"))
    default_format = AudioFormat("wav")

    async def voices(self) -> list[Voice]:
        return [Voice("plain", "Plain"), Voice("shout", "Shout")]

    async def _synthesize(self, text: str, format: AudioFormat, settings: CodeTTSSettings) -> Synthesis:
        spoken = text.upper() if settings.voice == "shout" else text
        pcm, words = code_audio(spoken, settings.sample_rate, settings.speed)
        audio = PCMAudio(pcm, settings.sample_rate)
        return Synthesis(encode(audio, format), format, words, audio.duration_s)

    def _stream(self, format: AudioFormat, settings: CodeTTSSettings) -> TTSStream:
        return CodeTTSStream(format, settings)


@attrs.frozen
class KeyedSettings:
    language: str = attrs.field(default="en", validator=one_of("en", "fr"))
    region: str = attrs.field(default="eu", validator=one_of("eu", "us"))


class KeyedSTT(STTProvider[KeyedSettings]):
    """Needs an API key; its transcript says which region answered, once the key is checked."""

    name = "keyed"
    Settings = KeyedSettings
    capabilities = STTCapabilities(streaming=False)
    api_key_env: ClassVar[str | None] = "KEYED_API_KEY"

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: KeyedSettings) -> Transcript:
        self._require_api_key()
        return Transcript(f"{settings.region}: {len(audio)} bytes", True, language=settings.language)

    def _stream(self, format: AudioFormat, settings: KeyedSettings) -> STTStream:
        raise AssertionError("capabilities say streaming is not supported")


class CodePlugin:
    """Registers the in-test providers, as a backend's hook module does."""

    @hookimpl
    def speechbridge_register_providers(self, registry: ProviderRegistry) -> None:
        registry.add_stt(CodeSTT)
        registry.add_tts(CodeTTS)
        registry.add_stt(KeyedSTT)


@pytest.fixture
def registry() -> ProviderRegistry:
    """A registry of the in-test providers only: ``code`` (STT and TTS) and ``keyed`` (STT)."""
    return build_registry(plugin_manager(load_entrypoints=False, plugins=[CodePlugin()]))


@pytest.fixture
def installed(registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch) -> ProviderRegistry:
    """Make the in-test registry the process-wide one, and start from no config file and no overrides."""
    monkeypatch.setattr(plugins, "_registry", registry)
    for name in ("SPEECHBRIDGE_CONFIG", "SPEECHBRIDGE_STT", "SPEECHBRIDGE_TTS", "SPEECHBRIDGE_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    return registry


@pytest.fixture
def make_wav(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` spoken in the code voice to a WAV file in ``tmp_path``."""

    def make(text: str, name: str = "speech.wav", sample_rate: int = 16000) -> Path:
        path = tmp_path / name
        path.write_bytes(encode(PCMAudio(code_audio(text, sample_rate)[0], sample_rate), "wav"))
        return path

    return make


@pytest.fixture(scope="session")
def speech_sample(speech_sample: SpeechSample) -> SpeechSample:
    """Real speech from the local TTS when it is installed, else the speechbridge plugin's scripted tones."""
    if "local" not in plugins.get_registry().names("tts"):
        return speech_sample

    async def speak() -> SpeechSample:
        async with plugins.get_registry().tts("local")() as tts:
            return await make_speech_sample(tts, DEFAULT_TEXT)

    return asyncio.run(speak())
