"""The contract every speechbridge backend passes, as pytest test classes.

A backend's test module subclasses the suites and provides the provider fixtures::

    from speechbridge.testing.contract import STTContract, TTSContract

    @pytest.fixture
    def stt_provider(fake_acme_server):
        return AcmeSTT(api_key="test", base_url=fake_acme_server.url)

    class TestAcmeSTT(STTContract):
        pass

The STT suite also uses ``speech_sample`` (a :class:`~speechbridge.testing.SpeechSample`); the speechbridge pytest
plugin provides one, and a test package may override it with real speech. Every check depends only on the sample's
words and on the capabilities the provider declares: what it claims must work, and what it does not claim must not
appear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any, Final, TypeVar

import pytest

from ..audio import AudioFormat, PCMAudio, decode, encode
from ..errors import AudioFormatError, ConfigError, StreamClosed, UnsupportedFeature
from ..events import (
    AudioChunk,
    Flushed,
    Ready,
    SpeechStarted,
    StreamEnded,
    Transcript,
    TurnEnded,
    VADUpdate,
    WordTiming,
)
from ..provider import Provider
from ..streams import EventStream
from ..stt import STTProvider, STTStream
from ..tts import TTSProvider, Voice
from .samples import SpeechSample, word_overlap, words_of
from .scripted import level_dbfs

__all__ = ["STTContract", "TTSContract", "final_text", "finals", "recognise", "within"]

T = TypeVar("T")

TIMEOUT_S: Final = 60.0
MIN_OVERLAP: Final = 0.5  # share of the expected words a recogniser must get; loose on purpose
ODD_CHUNKS: Final = (317, 1001, 59, 4093)
CONVERSION_FORMATS: Final = ("mulaw_8000", "pcm_48000", "f32_16000")
TRUNCATION_FORMATS: Final = ("pcm_16000", "f32_16000")
TTS_TEXT: Final = "Hello there. The quick brown fox jumps over the lazy dog."
TTS_PIECES: Final = ("Hello there. The quick ", "brown fox jum", "ps over the lazy dog.")
SYNTHESIS_FORMATS: Final = ("wav", "pcm_16000", "mulaw_8000", "f32_22050", "flac", "ogg_opus")
STREAM_FORMATS: Final = ("pcm_16000", "mulaw_8000", "wav")
SPEECH_LEVEL_DBFS: Final = -45.0
UNKNOWN: Final = "no_such_option_for_contract"
BOGUS_OPTION: Final[dict[str, Any]] = {UNKNOWN: 1}


async def within(awaitable: Awaitable[T]) -> T:
    """Await with the contract's time limit, so a provider that never answers fails instead of hanging."""
    return await asyncio.wait_for(awaitable, TIMEOUT_S)


def chunked(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """``data`` cut into pieces whose sizes cycle through ``sizes``."""
    offset, index = 0, 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        yield data[offset : offset + size]
        offset, index = offset + size, index + 1


async def send_all(stream: STTStream, data: bytes, sizes: Sequence[int] = (3200,)) -> None:
    for chunk in chunked(data, sizes):
        await stream.send_audio(chunk)


async def recognise(
    provider: STTProvider[Any], data: bytes, format: AudioFormat | str, sizes: Sequence[int] = (3200,)
) -> list[Any]:
    """Every event of a stream that is sent ``data`` and ended."""
    async with provider.stream(format=format) as stream:
        await send_all(stream, data, sizes)
        await stream.end()
        return await within(stream.collect())


def finals(events: Sequence[object]) -> list[Transcript]:
    return [event for event in events if isinstance(event, Transcript) and event.is_final]


def final_text(events: Sequence[object]) -> str:
    return " ".join(event.text for event in finals(events) if event.text.strip())


def assert_lifecycle(events: Sequence[object]) -> None:
    """Ready first, exactly one StreamEnded, last."""
    assert events, "the stream emitted nothing"
    assert isinstance(events[0], Ready), f"the first event must be Ready, not {events[0]!r}"
    assert isinstance(events[-1], StreamEnded), f"the last event must be StreamEnded, not {events[-1]!r}"
    assert sum(isinstance(event, StreamEnded) for event in events) == 1


def assert_monotonic(spans: Sequence[tuple[float, float]], duration_s: float, *, slack_s: float = 0.1) -> None:
    """Each span starts no later than it ends, within the audio, and none goes back in time."""
    previous = (0.0, 0.0)
    for start, end in spans:
        assert 0.0 <= start <= end <= duration_s + slack_s, f"span {start:.3f}-{end:.3f} s outside 0-{duration_s:.3f} s"
        assert start >= previous[0] and end >= previous[1], f"span {start:.3f}-{end:.3f} s goes back in time"
        previous = (start, end)


def assert_plausible_speech(audio: PCMAudio, text: str) -> None:
    """Audible, and about as long as ``text`` takes to say."""
    count = len(words_of(text))
    assert 0.08 * count <= audio.duration_s <= 1.5 * count + 1.0, f"{audio.duration_s:.2f} s for {count} words"
    assert level_dbfs(audio.data) > SPEECH_LEVEL_DBFS, "the audio is (nearly) silent"


async def assert_closes_cleanly(provider: Provider[Any], stream: EventStream[Any], feed: Any) -> None:
    """Leaving ``async with`` by an error mid-stream cancels the stream's work and wakes a waiting consumer.

    A connection the provider shares between streams (a multiplexed socket) may outlive the stream, not the provider:
    tasks still running after the stream are allowed only if closing ``provider`` ends them.
    """
    before = asyncio.all_tasks()

    async def consume() -> None:
        async for _ in stream:
            pass

    consumer: asyncio.Task[None] | None = None
    with pytest.raises(RuntimeError, match="the caller failed"):
        async with stream:
            consumer = asyncio.create_task(consume())
            await feed(stream)
            await asyncio.sleep(0)
            raise RuntimeError("the caller failed")
    assert consumer is not None
    with pytest.raises(StreamClosed):
        await within(consumer)
    await asyncio.sleep(0)
    left = {task for task in asyncio.all_tasks() if not task.done()} - before
    if left:
        await within(provider.aclose())
        await asyncio.sleep(0)
        left = {task for task in left if not task.done()}
    assert not left, f"tasks still running after the stream and its provider closed: {left}"


class STTContract:
    """The speech-to-text contract. Needs fixtures ``stt_provider`` and ``speech_sample``."""

    @staticmethod
    def _streaming(provider: STTProvider[Any]) -> None:
        if not provider.capabilities.streaming:
            pytest.skip("the provider does not stream")

    @staticmethod
    def _batch(provider: STTProvider[Any]) -> None:
        if not provider.capabilities.batch:
            pytest.skip("the provider has no batch transcription")

    async def test_capabilities_gate_the_entry_points(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        if not stt_provider.capabilities.streaming:
            with pytest.raises(UnsupportedFeature):
                stt_provider.stream(format=speech_sample.audio.format)
        if not stt_provider.capabilities.batch:
            with pytest.raises(UnsupportedFeature):
                await stt_provider.transcribe(speech_sample.audio)

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def test_ready_first_stream_ended_last_then_closed(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        async with stt_provider.stream(format=speech_sample.audio.format) as stream:
            await send_all(stream, speech_sample.audio.data[: speech_sample.audio.format.bytes_for(1.0)])
            await stream.end()
            events = await within(stream.collect())
            assert_lifecycle(events)
            assert await within(stream.collect()) == [], "iteration must stop after StreamEnded"
            with pytest.raises(StreamClosed):
                await stream.send_audio(b"\0\0")
            with pytest.raises(StreamClosed):
                await stream.flush()
            with pytest.raises(StreamClosed):
                await stream.end()

    async def test_use_before_open_raises_stream_closed(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        stream = stt_provider.stream(format=speech_sample.audio.format)
        with pytest.raises(StreamClosed):
            await stream.send_audio(b"\0\0")
        with pytest.raises(StreamClosed):
            await stream.flush()
        with pytest.raises(StreamClosed):
            await stream.end()
        await stream.aclose()

    async def test_aclose_twice_is_safe(self, stt_provider: STTProvider[Any], speech_sample: SpeechSample) -> None:
        self._streaming(stt_provider)
        stream = stt_provider.stream(format=speech_sample.audio.format)
        await stream.open()
        await stream.send_audio(speech_sample.audio.data[:6400])
        await stream.aclose()
        await stream.aclose()
        with pytest.raises(StreamClosed):
            await stream.send_audio(b"\0\0")
        with pytest.raises(StreamClosed):
            await stream.open()

    async def test_leaving_the_context_cancels_cleanly(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        half = speech_sample.audio.data[: len(speech_sample.audio.data) // 4 * 2]
        await assert_closes_cleanly(
            stt_provider, stt_provider.stream(format=speech_sample.audio.format), lambda stream: send_all(stream, half)
        )

    # --- flush and end ----------------------------------------------------------------------------------------

    async def test_flush_delivers_final_text_first_and_works_twice(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        if not stt_provider.capabilities.flush:
            pytest.skip("the provider does not flush")
        audio = speech_sample.audio
        async with stt_provider.stream(format=audio.format) as stream:
            await send_all(stream, audio.data)
            first = await within(stream.flush())
            await send_all(stream, bytes(audio.format.bytes_for(0.5)))
            second = await within(stream.flush())
            await stream.end()
            events = await within(stream.collect())
        assert isinstance(first, Flushed) and isinstance(second, Flushed)
        assert second.flush_id > first.flush_id
        assert [event for event in events if isinstance(event, Flushed)] == [first, second]
        before_flush = events[: events.index(first)]
        assert final_text(before_flush), "no final transcript was delivered before Flushed"
        assert word_overlap(speech_sample.words, final_text(before_flush)) >= MIN_OVERLAP
        assert_lifecycle(events)

    async def test_flush_without_audio_is_confirmed(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        if not stt_provider.capabilities.flush:
            pytest.skip("the provider does not flush")
        async with stt_provider.stream(format=speech_sample.audio.format) as stream:
            flushed = await within(stream.flush())
            await stream.end()
            events = await within(stream.collect())
        assert flushed in events
        assert_lifecycle(events)

    async def test_end_drains_the_final_text(self, stt_provider: STTProvider[Any], speech_sample: SpeechSample) -> None:
        self._streaming(stt_provider)
        events = await recognise(stt_provider, speech_sample.audio.data, speech_sample.audio.format)
        assert_lifecycle(events)
        text = final_text(events)
        assert text, "no final text for speech"
        assert word_overlap(speech_sample.words, text) >= MIN_OVERLAP, f"heard {text!r}"
        if stt_provider.capabilities.batch:
            batch = await within(stt_provider.transcribe(speech_sample.audio))
            assert batch.is_final
            assert word_overlap(words_of(batch.text), text) >= MIN_OVERLAP, f"stream {text!r}, batch {batch.text!r}"
            if stt_provider.capabilities.word_timestamps:
                assert batch.words, "capabilities say word_timestamps, but the batch transcript carries no words"
                assert_monotonic([(word.start_s, word.end_s) for word in batch.words], speech_sample.audio.duration_s)
            else:
                assert not batch.words, "word times arrived, but capabilities say word_timestamps=False"

    async def test_transcribe_takes_containers_and_raw_bytes(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._batch(stt_provider)
        audio = speech_sample.audio
        results = [
            await within(stt_provider.transcribe(encode(audio, "wav"))),
            await within(stt_provider.transcribe(encode(audio, "mulaw_8000"), format="mulaw_8000")),
        ]
        for result in results:
            assert isinstance(result, Transcript) and result.is_final
            assert word_overlap(speech_sample.words, result.text) >= MIN_OVERLAP, f"heard {result.text!r}"

    # --- errors -----------------------------------------------------------------------------------------------

    async def test_unknown_option_is_a_config_error_naming_the_allowed(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        if stt_provider.capabilities.streaming:
            with pytest.raises(ConfigError) as info:
                stt_provider.stream(format=speech_sample.audio.format, **BOGUS_OPTION)
            assert UNKNOWN in str(info.value) and info.value.allowed
        if stt_provider.capabilities.batch:
            with pytest.raises(ConfigError) as info:
                await stt_provider.transcribe(speech_sample.audio, **BOGUS_OPTION)
            assert UNKNOWN in str(info.value) and info.value.allowed

    async def test_send_audio_rejects_what_is_not_bytes(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        async with stt_provider.stream(format=speech_sample.audio.format) as stream:
            for wrong in ("text", [0, 1], 7, speech_sample.audio):
                with pytest.raises(AudioFormatError):
                    await stream.send_audio(wrong)  # type: ignore[arg-type]
            await send_all(stream, speech_sample.audio.data[: speech_sample.audio.format.bytes_for(0.5)])
            await stream.end()
            assert_lifecycle(await within(stream.collect()))

    @pytest.mark.parametrize("format", TRUNCATION_FORMATS)
    async def test_audio_ending_inside_a_sample_is_an_audio_format_error(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample, format: str
    ) -> None:
        self._streaming(stt_provider)
        data = encode(speech_sample.audio, format)[:32000] + b"\x01"
        async with stt_provider.stream(format=format) as stream:
            await send_all(stream, data, ODD_CHUNKS)
            with pytest.raises(AudioFormatError):
                await stream.end()
            with pytest.raises(AudioFormatError):
                await within(stream.collect())
        if stt_provider.capabilities.batch:
            with pytest.raises(AudioFormatError):
                await stt_provider.transcribe(data, format=format)

    async def test_batch_rejects_empty_and_unrecognised_bytes(self, stt_provider: STTProvider[Any]) -> None:
        self._batch(stt_provider)
        with pytest.raises(AudioFormatError):
            await stt_provider.transcribe(b"")
        with pytest.raises(AudioFormatError):
            await stt_provider.transcribe(b"this is text, not audio")

    async def test_silence_gives_no_text(self, stt_provider: STTProvider[Any]) -> None:
        silence = PCMAudio(bytes(2 * 16000), 16000)
        if stt_provider.capabilities.streaming:
            events = await recognise(stt_provider, silence.data, silence.format)
            assert_lifecycle(events)
            assert final_text(events) == "", f"heard {final_text(events)!r} in silence"
        if stt_provider.capabilities.batch:
            result = await within(stt_provider.transcribe(silence))
            assert result.text.strip() == "", f"heard {result.text!r} in silence"

    # --- formats ----------------------------------------------------------------------------------------------

    @pytest.mark.parametrize("format", CONVERSION_FORMATS)
    async def test_other_input_formats_in_odd_chunks_are_recognised(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample, format: str
    ) -> None:
        self._streaming(stt_provider)
        events = await recognise(stt_provider, encode(speech_sample.audio, format), format, ODD_CHUNKS)
        assert_lifecycle(events)
        text = final_text(events)
        assert word_overlap(speech_sample.words, text) >= MIN_OVERLAP, f"heard {text!r} from {format}"

    # --- capabilities are honest ------------------------------------------------------------------------------

    async def test_stream_events_are_as_declared(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        """Word times, interim results and voice activity arrive exactly when the capabilities say so."""
        self._streaming(stt_provider)
        capabilities = stt_provider.capabilities
        frame = speech_sample.audio.format.bytes_for(0.08)
        events = await recognise(stt_provider, speech_sample.audio.data, speech_sample.audio.format, (frame,))

        words = [word for transcript in finals(events) for word in transcript.words]
        if capabilities.word_timestamps:
            assert words, "capabilities say word_timestamps, but finals carry no words"
            assert_monotonic([(word.start_s, word.end_s) for word in words], speech_sample.audio.duration_s)
        else:
            assert not words, "word times arrived, but capabilities say word_timestamps=False"

        interims = [e for e in events if isinstance(e, Transcript) and not e.is_final]
        if capabilities.interim_results:
            assert any(interim.text.strip() for interim in interims), "capabilities say interim_results, none came"
            assert events.index(interims[0]) < events.index(finals(events)[-1])
        else:
            assert not interims, "interim transcripts arrived, but capabilities say interim_results=False"

        updates = [event for event in events if isinstance(event, VADUpdate)]
        starts = [event for event in events if isinstance(event, SpeechStarted)]
        if capabilities.vad:
            assert updates or starts, "capabilities say vad, but no VADUpdate or SpeechStarted came"
            assert all(0.0 <= update.speech_prob <= 1.0 for update in updates)
            assert [update.time_s for update in updates] == sorted(update.time_s for update in updates)
            assert all(0.0 <= p <= 1.0 for update in updates for _, p in update.inactivity_prob)
        else:
            assert not updates and not starts, "VAD events arrived, but capabilities say vad=False"

    async def test_turn_detection_as_declared(
        self, stt_provider: STTProvider[Any], speech_sample: SpeechSample
    ) -> None:
        self._streaming(stt_provider)
        audio = speech_sample.audio
        events = await recognise(stt_provider, audio.data + bytes(audio.format.bytes_for(2.0)), audio.format)
        turns = [event for event in events if isinstance(event, TurnEnded)]
        if not stt_provider.capabilities.turn_detection:
            assert not turns, "TurnEnded arrived, but capabilities say turn_detection=False"
            return
        assert turns, "capabilities say turn_detection, but 2 s of silence after speech ended no turn"
        assert word_overlap(speech_sample.words, " ".join(turn.text for turn in turns)) >= MIN_OVERLAP
        assert events.index(turns[0]) < len(events) - 1


class TTSContract:
    """The text-to-speech contract. Needs the fixture ``tts_provider``."""

    @staticmethod
    def _streaming(provider: TTSProvider[Any]) -> None:
        if not provider.capabilities.streaming:
            pytest.skip("the provider does not stream")

    @staticmethod
    def _batch(provider: TTSProvider[Any]) -> None:
        if not provider.capabilities.batch:
            pytest.skip("the provider has no one-shot synthesis")

    async def test_capabilities_gate_the_entry_points(self, tts_provider: TTSProvider[Any]) -> None:
        if not tts_provider.capabilities.streaming:
            with pytest.raises(UnsupportedFeature):
                tts_provider.stream(format="pcm_16000")
        if not tts_provider.capabilities.batch:
            with pytest.raises(UnsupportedFeature):
                await tts_provider.synthesize(TTS_TEXT)

    @pytest.mark.parametrize("format", SYNTHESIS_FORMATS)
    async def test_synthesize_decodable_audio(self, tts_provider: TTSProvider[Any], format: str) -> None:
        self._batch(tts_provider)
        requested = AudioFormat.parse(format)
        synthesis = await within(tts_provider.synthesize(TTS_TEXT, format=format))
        assert synthesis.format.encoding == requested.encoding
        if requested.sample_rate:
            assert synthesis.format.sample_rate == requested.sample_rate
        pcm = decode(synthesis.audio, synthesis.format if synthesis.format.is_raw else None)
        if synthesis.format.sample_rate and requested.encoding != "ogg_opus":
            assert pcm.sample_rate == synthesis.format.sample_rate
        assert_plausible_speech(pcm, TTS_TEXT)
        if synthesis.duration_s is not None:
            assert abs(synthesis.duration_s - pcm.duration_s) <= 0.1 + 0.05 * pcm.duration_s

    @pytest.mark.parametrize("format", STREAM_FORMATS)
    async def test_stream_emits_audio_in_the_requested_format(
        self, tts_provider: TTSProvider[Any], format: str
    ) -> None:
        self._streaming(tts_provider)
        requested = AudioFormat.parse(format)
        async with tts_provider.stream(format=format) as stream:
            for piece in TTS_PIECES:
                await stream.send_text(piece)
            await stream.end()
            events = await within(stream.collect())
            assert await within(stream.collect()) == [], "iteration must stop after StreamEnded"
        assert_lifecycle(events)
        chunks = [event for event in events if isinstance(event, AudioChunk)]
        assert chunks, "the stream produced no audio"
        assert {chunk.format for chunk in chunks} == {stream.format}
        assert stream.format.encoding == requested.encoding
        if requested.sample_rate:
            assert stream.format.sample_rate == requested.sample_rate
        data = b"".join(chunk.data for chunk in chunks)
        pcm = decode(data, stream.format if stream.format.is_raw else None)
        assert_plausible_speech(pcm, TTS_TEXT)

    async def test_flush_returns_after_the_audio_of_the_text_so_far(self, tts_provider: TTSProvider[Any]) -> None:
        self._streaming(tts_provider)
        texts = ("Hello there, extraordinarily", " wonderful conversationalists")
        async with tts_provider.stream(format="pcm_16000") as stream:
            await stream.send_text(texts[0])
            first = await within(stream.flush())
            await stream.send_text(texts[1])
            second = await within(stream.flush())
            await stream.end()
            events = await within(stream.collect())
        assert_lifecycle(events)
        assert second.flush_id > first.flush_id
        assert [event for event in events if isinstance(event, Flushed)] == [first, second]
        cuts = (0, events.index(first), events.index(second))
        for text, start, stop in zip(texts, cuts, cuts[1:], strict=False):
            audio = b"".join(event.data for event in events[start:stop] if isinstance(event, AudioChunk))
            assert audio, f"no audio for {text!r} before its flush was confirmed"
            streamed = PCMAudio(audio, 16000)
            assert_plausible_speech(streamed, text)
            if tts_provider.capabilities.batch:
                whole = await within(tts_provider.synthesize(text, format="pcm_16000"))
                expected_s = decode(whole.audio, whole.format).duration_s
                assert streamed.duration_s >= 0.7 * expected_s, f"part of {text!r} came after its flush"

    async def test_empty_text_is_a_config_error(self, tts_provider: TTSProvider[Any]) -> None:
        self._batch(tts_provider)
        for empty in ("", "  \n\t"):
            with pytest.raises(ConfigError):
                await tts_provider.synthesize(empty)

    async def test_unknown_voice_is_a_config_error(self, tts_provider: TTSProvider[Any]) -> None:
        voice = "no-such-voice-for-contract"
        if tts_provider.capabilities.batch:
            with pytest.raises(ConfigError):
                await tts_provider.synthesize(TTS_TEXT, voice=voice)
        if tts_provider.capabilities.streaming:
            with pytest.raises(ConfigError):
                async with tts_provider.stream(voice=voice, format="pcm_16000") as stream:
                    await stream.send_text(TTS_TEXT)
                    await stream.end()
                    await within(stream.collect())

    async def test_unknown_option_is_a_config_error_naming_the_allowed(self, tts_provider: TTSProvider[Any]) -> None:
        if tts_provider.capabilities.streaming:
            with pytest.raises(ConfigError) as info:
                tts_provider.stream(format="pcm_16000", **BOGUS_OPTION)
            assert UNKNOWN in str(info.value) and info.value.allowed
        if tts_provider.capabilities.batch:
            with pytest.raises(ConfigError) as info:
                await tts_provider.synthesize(TTS_TEXT, **BOGUS_OPTION)
            assert UNKNOWN in str(info.value) and info.value.allowed

    async def test_listed_voices_are_accepted(self, tts_provider: TTSProvider[Any]) -> None:
        voices = await within(tts_provider.voices())
        assert voices and all(isinstance(voice, Voice) for voice in voices)
        assert len({voice.id for voice in voices}) == len(voices), "voice ids repeat"
        if tts_provider.capabilities.batch:
            synthesis = await within(tts_provider.synthesize("Hello.", voice=voices[0].id, format="pcm_16000"))
            assert synthesis.audio

    async def test_word_timings_as_declared(self, tts_provider: TTSProvider[Any]) -> None:
        declared = tts_provider.capabilities.word_timestamps
        if tts_provider.capabilities.batch:
            synthesis = await within(tts_provider.synthesize(TTS_TEXT, format="pcm_16000"))
            duration = decode(synthesis.audio, synthesis.format).duration_s
            self._check_timings(list(synthesis.words), duration, declared=declared)
        if tts_provider.capabilities.streaming:
            async with tts_provider.stream(format="pcm_16000") as stream:
                for piece in TTS_PIECES:
                    await stream.send_text(piece)
                await stream.end()
                events = await within(stream.collect())
            audio = b"".join(event.data for event in events if isinstance(event, AudioChunk))
            timings = [event for event in events if isinstance(event, WordTiming)]
            self._check_timings(timings, len(audio) / 2 / 16000, declared=declared)

    @staticmethod
    def _check_timings(timings: list[WordTiming], duration_s: float, *, declared: bool) -> None:
        if not declared:
            assert not timings, "word timings arrived, but capabilities say word_timestamps=False"
            return
        assert timings, "capabilities say word_timestamps, but no word timings came"
        assert word_overlap(words_of(TTS_TEXT), " ".join(timing.text for timing in timings)) >= MIN_OVERLAP
        assert_monotonic([(timing.start_s, timing.end_s) for timing in timings], duration_s)

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def test_stream_lifecycle_and_state_errors(self, tts_provider: TTSProvider[Any]) -> None:
        self._streaming(tts_provider)
        stream = tts_provider.stream(format="pcm_16000")
        with pytest.raises(StreamClosed):
            await stream.send_text("too early")
        async with stream:
            with pytest.raises(ConfigError):
                await stream.send_text(b"bytes are not text")  # type: ignore[arg-type]
            await stream.send_text("Hello.")
            await stream.end()
            assert_lifecycle(await within(stream.collect()))
            with pytest.raises(StreamClosed):
                await stream.send_text("too late")
            with pytest.raises(StreamClosed):
                await stream.flush()
        await stream.aclose()

    async def test_stream_rejects_container_formats(self, tts_provider: TTSProvider[Any]) -> None:
        self._streaming(tts_provider)
        with pytest.raises(AudioFormatError):
            tts_provider.stream(format="mp3")

    async def test_leaving_the_context_cancels_cleanly(self, tts_provider: TTSProvider[Any]) -> None:
        self._streaming(tts_provider)

        async def feed(stream: Any) -> None:
            await stream.send_text(TTS_PIECES[0])

        await assert_closes_cleanly(tts_provider, tts_provider.stream(format="pcm_16000"), feed)
