"""``FallbackTTS``: text-to-speech over an ordered chain of providers, moving on when one fails or goes silent."""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar, Final, cast

import attrs

from ..audio import AudioFormat
from ..errors import ConfigError, TransportError
from ..events import AudioChunk, Flushed, ProviderSwitched, Ready, StreamEnded, WordTiming
from ..tts import Synthesis, TTSCapabilities, TTSProvider, TTSStream, Voice
from .chain import (
    Attempt,
    Chain,
    FailoverSettings,
    Relay,
    Relayed,
    first_success,
    forward_options,
    log,
)

__all__ = ["FallbackTTS", "FallbackTTSStream"]

SPEECH_S_PER_CHAR: Final = 0.1  # speech takes about 0.07 s a character; a request may take as long, with room
STREAM_RATE: Final = 24000  # members stream PCM at the caller's rate, or this when the format names none
PROBE_TEXT: Final = "ok"
LOOKAHEAD_WORDS: Final = 3  # how far a word timing may be matched ahead in the text
_TOKEN: Final = re.compile(r"\S+")


def _plain(word: str) -> str:
    return "".join(char for char in word.casefold() if char.isalnum())


async def _probe_tts(provider: TTSProvider[Any]) -> None:
    """A small real request: one word, synthesised (or streamed, by a streaming-only provider)."""
    if provider.capabilities.batch:
        audio = (await provider.synthesize(PROBE_TEXT, format="pcm_16000")).audio
    else:
        async with provider.stream(format="pcm_16000") as stream:
            await stream.send_text(PROBE_TEXT)
            await stream.end()
            audio = b"".join(event.data for event in await stream.collect() if isinstance(event, AudioChunk))
    if not audio:
        raise TransportError("the probe's word came back without audio", provider=provider.name)


class FallbackTTS(Chain[TTSProvider[Any], TTSCapabilities], TTSProvider[FailoverSettings]):  # type: ignore[override]
    """Text-to-speech over ``providers``, tried in order: the first is the primary, the others standbys.

    Failures and probes work as in :class:`~speechbridge.fallback.FallbackSTT`; the no-output watchdog waits for
    audio. Each provider needs a voice of its own: make each with its voice, or give ``voice`` per call as a mapping
    of provider name to voice (a plain string goes to every provider). Other per-call options are the common ones.
    ``format`` defaults to WAV, whichever provider speaks; :meth:`voices` lists the primary's.

    >>> tts = FallbackTTS([GradiumTTS(), LocalTTS()])
    >>> await tts.synthesize("Hello.", voice={"gradium": "YTpq7expH9539ERJ", "local": "heart"})
    """

    kind: ClassVar[str] = "tts"
    member_type: ClassVar[type[Any]] = TTSProvider
    default_format: ClassVar[AudioFormat] = AudioFormat("wav")

    async def _probe(self, provider: TTSProvider[Any]) -> None:
        await _probe_tts(provider)

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | Mapping[str, str] | None = None,
        format: AudioFormat | str | None = None,
        **options: Any,
    ) -> Synthesis:
        """Speak ``text`` with the first provider that can; ``voice`` may map provider names to their voices."""
        return await super().synthesize(text, format=format, **self._with_voice(voice, options))

    def stream(
        self,
        *,
        voice: str | Mapping[str, str] | None = None,
        format: AudioFormat | str | None = None,
        **options: Any,
    ) -> FallbackTTSStream:
        """A live session that moves to the next provider when one fails; ``voice`` as for :meth:`synthesize`, and
        ``stream.active`` names the serving provider."""
        return cast(FallbackTTSStream, super().stream(format=format, **self._with_voice(voice, options)))

    @staticmethod
    def _with_voice(voice: str | Mapping[str, str] | None, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "voice": voice} if voice is not None else options

    def _settings_with(self, options: Mapping[str, Any]) -> FailoverSettings:
        common = dict(options)
        voice = common.get("voice")
        specific: dict[str, dict[str, Any]] = {}
        if isinstance(voice, Mapping):
            del common["voice"]
            names = [member.name for member in self.providers]
            for name, each in voice.items():
                if name not in names:
                    raise ConfigError(f"voice is given for {name!r}, which is not in the fallback chain", allowed=names)
                specific[name] = {"voice": each}
        return attrs.evolve(self.settings, per_provider=forward_options(self.providers, common, specific))

    async def voices(self) -> list[Voice]:
        return await self.providers[0].voices()

    async def _synthesize(self, text: str, format: AudioFormat, settings: FailoverSettings) -> Synthesis:
        async def call(provider: TTSProvider[Any], index: int) -> Synthesis:
            synthesis = await provider.synthesize(text, format=format, **settings.per_provider[index])
            if not synthesis.audio:
                raise TransportError("answered without audio", provider=provider.name)
            return synthesis

        timeout = settings.no_output_timeout_s + SPEECH_S_PER_CHAR * len(text)
        return await first_success(self.members, call, timeout)

    def _stream(self, format: AudioFormat, settings: FailoverSettings) -> TTSStream:
        return FallbackTTSStream(self, format, settings)


class FallbackTTSStream(Relayed[TTSStream], TTSStream):
    """A live session of :class:`FallbackTTS`, served by one provider's stream at a time.

    Members stream 16-bit PCM at the caller's rate, which this stream converts to the caller's format. The text since
    the last confirmed flush is kept. When the serving stream fails, or a flush or the end has had no audio for
    ``no_output_timeout_s``, the next provider's stream opens and is given again the kept text from the first word
    whose audio was not completely delivered (known from word timings; without them, all the kept text), then the
    pending flushes and end. Audio is never repeated beyond that word. A word's timing is emitted once its audio is.
    """

    def __init__(self, fallback: FallbackTTS, format: AudioFormat, settings: FailoverSettings) -> None:
        rate = format.sample_rate or STREAM_RATE
        super().__init__(fallback.name, format=format, native_format=AudioFormat.pcm16(rate))
        self._capabilities = fallback.capabilities
        self._per_provider = settings.per_provider
        self._relay: Relay[TTSStream] = Relay(fallback.members, self._member_stream, settings.no_output_timeout_s)
        self._bytes_per_s = self.native_format.bytes_for(1.0)
        self._outbox: asyncio.Queue[str | int | None] = asyncio.Queue()  # text, a flush id, None: the end
        self._flushes: deque[tuple[int, int]] = deque()  # (flush id, where in the kept text) not confirmed yet
        self._ending = False
        self._ready_emitted = False
        self._text = ""  # the text since the last confirmed flush
        self._spoken = 0  # how much of it has had its audio delivered
        self._out_s = 0.0  # audio delivered so far
        self._timings: deque[WordTiming] = deque()  # held until their audio is delivered

    def _member_stream(self, index: int) -> TTSStream:
        provider: TTSProvider[Any] = self._relay.members.providers[index]
        return provider.stream(format=self.native_format, **self._per_provider[index])

    async def _open(self) -> None:
        await self._relay.connect(0.0)
        self._spawn(self._relay.run(self._serve, lambda: self._out_s, self._switched))

    async def _send_text(self, text: str) -> None:
        self._outbox.put_nowait(text)

    # --- serving through one member ------------------------------------------------------------------------------

    async def _deliver(self, attempt: Attempt[TTSStream]) -> None:
        stream = attempt.stream
        position = self._spoken
        for _, cut in list(self._flushes):
            if self._text[position:cut].strip():
                await stream.send_text(self._text[position:cut])
            position = max(position, cut)
            attempt.arm()
            await stream.flush()
        if self._text[position:].strip():
            await stream.send_text(self._text[position:])
        if self._ending:
            attempt.arm()
            await stream.end()
            return
        while True:
            command = await self._outbox.get()
            if isinstance(command, str):
                self._text += command
                await stream.send_text(command)
            elif command is None:
                self._ending = True
                attempt.arm()
                await stream.end()
                return
            else:
                self._flushes.append((command, len(self._text)))
                attempt.arm()
                await stream.flush()  # later text waits for the confirmation, so it goes out after the flush

    async def _receive(self, attempt: Attempt[TTSStream]) -> None:
        async for event in attempt.stream:
            if isinstance(event, AudioChunk):
                self._out_s += len(event.data) / self._bytes_per_s
                self._emit_audio(event.data)
                self._release(self._out_s)
            elif isinstance(event, WordTiming):
                offset = attempt.offset_s
                self._timings.append(attrs.evolve(event, start_s=event.start_s + offset, end_s=event.end_s + offset))
                self._release(self._out_s)
                continue
            elif isinstance(event, Flushed):
                self._release(math.inf)
                if self._flushes:
                    flush_id, cut = self._flushes.popleft()
                    self._confirmed(cut)
                    self._emit(Flushed(flush_id))
            elif isinstance(event, StreamEnded):
                if not self._ending:
                    raise TransportError("ended the stream before end() was called", provider=attempt.name)
                self._release(math.inf)
                self._emit_audio_end()
                self._emit(event)
            elif isinstance(event, Ready):
                if not self._ready_emitted:
                    self._ready_emitted = True
                    self._emit(Ready(event.request_id, self.native_format.sample_rate))
                continue
            else:
                self._emit(event)
                continue
            attempt.answered(still_due=bool(self._flushes) or self._ending)

    # --- what has been spoken ------------------------------------------------------------------------------------

    def _release(self, delivered_s: float) -> None:
        """Emit the held word timings whose audio is delivered, and count their words as spoken."""
        while self._timings and self._timings[0].end_s <= delivered_s + 1e-3:
            timing = self._timings.popleft()
            self._advance(timing.text)
            if self._capabilities.word_timestamps:
                self._emit(timing)

    def _advance(self, word: str) -> None:
        """``word`` was spoken: when it is one of the next few words of the kept text, what is spoken ends after it
        (a provider may say a text's word as several, such as a number)."""
        tokens = (token for token in _TOKEN.finditer(self._text, self._spoken) if _plain(token.group()))
        for _, token in zip(range(LOOKAHEAD_WORDS), tokens, strict=False):
            if _plain(token.group()) == _plain(word):
                self._spoken = token.end()
                return

    def _confirmed(self, cut: int) -> None:
        """A flush asked at ``cut`` of the kept text is confirmed: that text is done with."""
        self._text = self._text[cut:]
        self._spoken = max(0, self._spoken - cut)
        self._flushes = deque((flush_id, at - cut) for flush_id, at in self._flushes)

    def _switched(self, old: Attempt[TTSStream], new: Attempt[TTSStream], error: Exception) -> None:
        self._timings.clear()  # their words were not completely delivered: the new provider speaks them again
        resent = self._text[self._spoken :].strip()
        log.info(
            "tts fallback: a stream moved from %s to %s at %.2f s, resending %d characters (%s)",
            old.name,
            new.name,
            new.offset_s,
            len(resent),
            error,
        )
        switched = ProviderSwitched(new.name, old.name, str(error), new.offset_s, resent_text=resent)
        self._emit(switched)
