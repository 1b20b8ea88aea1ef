"""``FallbackSTT``: speech-to-text over an ordered chain of providers, moving on when one fails or goes silent."""

from __future__ import annotations

import asyncio
import math
import operator
import sys
from array import array
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar, Final, cast

import attrs

from ..audio import AudioFormat, PCMAudio, duration_of
from ..errors import AudioFormatError, TransportError
from ..events import (
    Flushed,
    ProviderSwitched,
    Ready,
    SpeechStarted,
    StreamEnded,
    STTEvent,
    Transcript,
    TurnEnded,
    VADUpdate,
)
from ..stt import STTCapabilities, STTProvider, STTStream
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

__all__ = ["FallbackSTT", "FallbackSTTStream"]

VOICED_DBFS: Final = -45.0  # audio at least this loud is speech a recogniser owes an answer to
_VOICED_MEAN_SQUARE: Final = (32768 * 10 ** (VOICED_DBFS / 20)) ** 2
COMPRESSED_BYTES_PER_S: Final = 1000  # 8 kbit/s: no common codec is leaner, so no recording is longer than this
PROBE: Final = PCMAudio(bytes(2 * 8000), 16000)  # half a second of silence


def _voiced(pcm16: bytes) -> bool:
    samples = array("h")
    samples.frombytes(pcm16[: len(pcm16) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return bool(samples) and sum(map(operator.mul, samples, samples)) / len(samples) >= _VOICED_MEAN_SQUARE


def _longest_duration_s(audio: bytes, format: AudioFormat) -> float:
    """How long ``audio`` lasts at most: exactly for raw audio, at the leanest bitrate for a container."""
    return duration_of(len(audio), format) if format.is_raw else len(audio) / COMPRESSED_BYTES_PER_S


def _shifted(event: STTEvent, offset_s: float) -> STTEvent:
    """``event`` with its times moved ``offset_s`` later."""
    if not offset_s:
        return event
    if isinstance(event, Transcript):
        return attrs.evolve(
            event,
            start_s=None if event.start_s is None else event.start_s + offset_s,
            end_s=None if event.end_s is None else event.end_s + offset_s,
            words=tuple(attrs.evolve(w, start_s=w.start_s + offset_s, end_s=w.end_s + offset_s) for w in event.words),
        )
    if isinstance(event, (VADUpdate, SpeechStarted)):
        return attrs.evolve(event, time_s=event.time_s + offset_s)
    if isinstance(event, TurnEnded) and event.time_s is not None:
        return attrs.evolve(event, time_s=event.time_s + offset_s)
    return event


async def _probe_stt(provider: STTProvider[Any]) -> None:
    """A small real request: half a second of silence, transcribed (or streamed, by a streaming-only provider)."""
    if provider.capabilities.batch:
        await provider.transcribe(PROBE)
        return
    async with provider.stream(format=PROBE.format) as stream:
        await stream.send_audio(PROBE.data)
        await stream.end()
        await stream.collect()


class FallbackSTT(Chain[STTProvider[Any], STTCapabilities], STTProvider[FailoverSettings]):  # type: ignore[override]
    """Speech-to-text over ``providers``, tried in order: the first is the primary, the others standbys.

    A request moves to the next provider when one fails for a reason of its own (see
    :func:`~speechbridge.fallback.is_failover_reason`) or answers nothing for ``no_output_timeout_s``; other errors
    are raised at once, and when every provider failed, :class:`~speechbridge.fallback.AllProvidersFailed` lists why.
    A provider that failed is probed every ``probe_interval_s`` and serves new requests again once a probe succeeds.
    Per-call options are the common ones (``language``, ``sample_rate``...), given to each provider that has them;
    give provider-specific options to each provider when making it. ``reliability.replay_limit_s`` bounds the audio
    a stream keeps for replay. Closing the chain closes its providers.

    >>> stt = FallbackSTT([GradiumSTT(), DeepgramSTT(), LocalSTT()], no_output_timeout_s=5)
    """

    kind: ClassVar[str] = "stt"
    member_type: ClassVar[type[Any]] = STTProvider

    async def _probe(self, provider: STTProvider[Any]) -> None:
        await _probe_stt(provider)

    def _settings_with(self, options: Mapping[str, Any]) -> FailoverSettings:
        return attrs.evolve(self.settings, per_provider=forward_options(self.providers, options))

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: FailoverSettings) -> Transcript:
        async def call(provider: STTProvider[Any], index: int) -> Transcript:
            return await provider.transcribe(audio, format=format, **settings.per_provider[index])

        timeout = settings.no_output_timeout_s + _longest_duration_s(audio, format)
        return await first_success(self.members, call, timeout)

    def stream(self, *, format: AudioFormat | str, **options: Any) -> FallbackSTTStream:
        """A live session that moves to the next provider when one fails; ``stream.active`` names the serving one."""
        return cast(FallbackSTTStream, super().stream(format=format, **options))

    def _stream(self, format: AudioFormat, settings: FailoverSettings) -> STTStream:
        return FallbackSTTStream(self, format, settings)


class FallbackSTTStream(Relayed[STTStream], STTStream):
    """A live session of :class:`FallbackSTT`, served by one provider's stream at a time.

    The caller's audio goes to the serving stream as 16-bit PCM at the caller's rate and is kept until a final
    transcript covers it (up to ``replay_limit_s``). When that stream fails, or voiced audio, a flush or the end has
    had no answer for ``no_output_timeout_s``, the next provider's stream opens, is sent the kept audio again, then
    the pending flush and end, then what came meanwhile; :class:`~speechbridge.fallback.ProviderSwitched` marks the
    move. Times stay on one timeline, and events the chain's capabilities exclude are left out.
    """

    def __init__(self, fallback: FallbackSTT, format: AudioFormat, settings: FailoverSettings) -> None:
        if not format.is_raw or format.sample_rate is None:
            raise AudioFormatError(
                f"a fallback stream takes raw audio at a known rate (such as pcm_16000), not {format}: "
                "a standby must be able to take the audio up mid-way"
            )
        wire_format = AudioFormat.pcm16(format.sample_rate)
        super().__init__(fallback.name, format=format, wire_format=wire_format)
        self._capabilities = fallback.capabilities
        self._per_provider = settings.per_provider
        self._relay: Relay[STTStream] = Relay(fallback.members, self._member_stream, settings.no_output_timeout_s)
        self._limit_s = fallback.reliability.replay_limit_s
        self._bytes_per_s = wire_format.bytes_for(1.0)
        self._outbox: asyncio.Queue[bytes | int | None] = asyncio.Queue()  # audio, a flush id, None: the end
        self._flushes: deque[int] = deque()  # flushes sent to the member and not confirmed yet
        self._ending = False
        self._ready_emitted = False  # Ready is emitted once, from the first provider
        self._kept: deque[tuple[float, bytes]] = deque()  # (start in the stream's timeline, audio) not covered yet
        self._audio_s = 0.0  # audio sent so far
        self._covered_s = 0.0  # audio covered by final transcripts
        self._last_vad_s = -math.inf
        self._last_speech_s = -math.inf
        self._turn_finals: list[str] = []  # final texts since the last TurnEnded
        self._turn_prefix: list[str] = []  # the part of those that earlier providers gave

    def _member_stream(self, index: int) -> STTStream:
        provider: STTProvider[Any] = self._relay.members.providers[index]
        return provider.stream(format=self.wire_format, **self._per_provider[index])

    async def _open(self) -> None:
        await self._relay.connect(0.0)
        self._spawn(self._relay.run(self._serve, self._replay_start_s, self._switched))

    async def _send_frame(self, frame: bytes) -> None:
        self._outbox.put_nowait(frame)

    # --- serving through one member ------------------------------------------------------------------------------

    async def _deliver(self, attempt: Attempt[STTStream]) -> None:
        stream = attempt.stream
        for _, frame in list(self._kept):
            if _voiced(frame):
                attempt.arm()
            await stream.send_audio(frame)
        for _ in list(self._flushes):
            attempt.arm()
            await stream.flush()
        if self._ending:
            attempt.arm()
            await stream.end()
            return
        while True:
            command = await self._outbox.get()
            if isinstance(command, bytes):
                self._keep(command)
                if _voiced(command):
                    attempt.arm()
                await stream.send_audio(command)
            elif command is None:
                self._ending = True
                attempt.arm()
                await stream.end()
                return
            else:
                self._flushes.append(command)
                attempt.arm()
                await stream.flush()  # later audio waits for the confirmation, so it goes out after the flush

    async def _receive(self, attempt: Attempt[STTStream]) -> None:
        async for event in attempt.stream:
            if isinstance(event, Flushed):
                if self._flushes:
                    self._emit(Flushed(self._flushes.popleft()))
            elif isinstance(event, StreamEnded):
                if not self._ending:
                    raise TransportError("ended the stream before end() was called", provider=attempt.name)
                self._emit(event)
            else:
                self._forward(_shifted(event, attempt.offset_s))
            attempt.answered(still_due=bool(self._flushes) or self._ending)

    def _forward(self, event: STTEvent) -> None:
        capabilities = self._capabilities
        if isinstance(event, Ready):
            if not self._ready_emitted:
                self._ready_emitted = True
                self._emit(event)
        elif isinstance(event, Transcript):
            if event.is_final:
                self._cover(event.end_s if event.end_s is not None else self._audio_s)
                if event.text:
                    self._turn_finals.append(event.text)
            elif not capabilities.interim_results:
                return
            self._emit(event if capabilities.word_timestamps else attrs.evolve(event, words=()))
        elif isinstance(event, VADUpdate):
            if capabilities.vad and event.time_s >= self._last_vad_s:
                self._last_vad_s = event.time_s
                self._emit(event)
        elif isinstance(event, SpeechStarted):
            if capabilities.vad and event.time_s > self._last_speech_s:
                self._last_speech_s = event.time_s
                self._emit(event)
        elif isinstance(event, TurnEnded):
            if capabilities.turn_detection:
                text = " ".join(part for part in (*self._turn_prefix, event.text) if part)
                self._turn_prefix, self._turn_finals = [], []
                self._emit(attrs.evolve(event, text=text))
        else:
            self._emit(event)

    # --- the audio kept for replay -------------------------------------------------------------------------------

    def _keep(self, frame: bytes) -> None:
        self._kept.append((self._audio_s, frame))
        self._audio_s += len(frame) / self._bytes_per_s
        while self._kept and self._audio_s - self._kept[0][0] > self._limit_s:
            self._kept.popleft()

    def _cover(self, end_s: float) -> None:
        """Final text covers the audio up to ``end_s``: it needs no replay."""
        self._covered_s = max(self._covered_s, end_s)
        while self._kept:
            start, frame = self._kept[0]
            if start + len(frame) / self._bytes_per_s <= end_s + 1e-9:
                self._kept.popleft()
                continue
            if start < end_s:
                cut = round((end_s - start) * self._bytes_per_s / 2) * 2
                self._kept[0] = (start + cut / self._bytes_per_s, frame[cut:])
            return

    def _replay_start_s(self) -> float:
        return self._kept[0][0] if self._kept else self._audio_s

    def _switched(self, old: Attempt[STTStream], new: Attempt[STTStream], error: Exception) -> None:
        start = new.offset_s
        replayed, lost = self._audio_s - start, max(0.0, start - self._covered_s)
        self._turn_prefix = list(self._turn_finals)
        log.info(
            "stt fallback: a stream moved from %s to %s at %.2f s, replaying %.2f s (%s)",
            old.name,
            new.name,
            start,
            replayed,
            error,
        )
        switched = ProviderSwitched(new.name, old.name, str(error), start, replayed, lost)
        self._emit(switched)
