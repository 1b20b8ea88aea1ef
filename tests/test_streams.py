"""The base stream machinery: framing, conversion, flush bookkeeping, failures, background tasks and states."""

from __future__ import annotations

import asyncio
import math
import struct
from typing import Any

import pytest

from speechbridge.audio import AudioFormat, PCMAudio, decode, encode
from speechbridge.errors import AudioFormatError, ConfigError, SpeechBridgeError, StreamClosed, TransportError
from speechbridge.events import AudioChunk, Flushed, Ready, StreamEnded, Transcript
from speechbridge.streams import StreamState
from speechbridge.stt import STTStream
from speechbridge.tts import TTSStream

WIRE = AudioFormat.pcm16(16000)
FRAME_BYTES = 2560  # 80 ms of 16 kHz 16-bit mono


def tone(seconds: float, sample_rate: int, frequency: float = 440.0) -> PCMAudio:
    count = round(seconds * sample_rate)
    samples = [round(8000 * math.sin(2 * math.pi * frequency * i / sample_rate)) for i in range(count)]
    return PCMAudio(struct.pack(f"<{count}h", *samples), sample_rate)


class RecordingSTTStream(STTStream):
    """Records the wire frames; confirms flushes at once, or later from a background task when ``defer``."""

    def __init__(self, format: AudioFormat | str = WIRE, *, wire_format: AudioFormat = WIRE, defer: bool = False):
        super().__init__("test", format=AudioFormat.parse(format), wire_format=wire_format)
        self.frames: list[bytes] = []
        self.defer = defer
        self.closed = 0

    async def _open(self) -> None:
        self._emit(Ready())

    async def _send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    async def _send_flush(self, flush_id: int) -> None:
        if self.defer:
            return
        self._emit(Transcript(f"{len(self.frames)} frames", is_final=True))
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        self._emit(StreamEnded())

    async def _close(self) -> None:
        self.closed += 1


class RecordingTTSStream(TTSStream):
    """Speaks each text as 10 ms of a constant sample value per character, at 24 kHz."""

    def __init__(self, format: AudioFormat | str) -> None:
        super().__init__("test", format=AudioFormat.parse(format), native_format=AudioFormat.pcm16(24000))

    async def _send_text(self, text: str) -> None:
        self._emit_audio(struct.pack("<h", 1000) * 240 * len(text))

    async def _send_flush(self, flush_id: int) -> None:
        self._emit(Flushed(flush_id))

    async def _send_end(self) -> None:
        self._emit_audio_end()
        self._emit(StreamEnded())


async def bounded(awaitable: Any) -> Any:
    """Await, failing instead of hanging when the stream never answers."""
    return await asyncio.wait_for(awaitable, 2)


async def send_in_chunks(stream: STTStream, data: bytes, sizes: tuple[int, ...]) -> None:
    offset, index = 0, 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        await stream.send_audio(data[offset : offset + size])
        offset, index = offset + size, index + 1


# --- framing and conversion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [(1,), (2,), (333, 7, 5001), (FRAME_BYTES,), (100_000,)])
async def test_frames_are_80_ms_whatever_the_chunk_sizes(sizes: tuple[int, ...]) -> None:
    audio = tone(1.01, 16000).data
    async with RecordingSTTStream() as stream:
        await send_in_chunks(stream, audio, sizes)
        await stream.end()
    assert all(len(frame) == FRAME_BYTES for frame in stream.frames[:-1])
    assert 0 < len(stream.frames[-1]) <= FRAME_BYTES
    assert b"".join(stream.frames) == audio
    assert stream.wire_bytes_sent == len(audio)


async def test_frames_follow_the_wire_rate() -> None:
    wire = AudioFormat("mulaw", 8000)
    async with RecordingSTTStream(WIRE, wire_format=wire) as stream:
        await send_in_chunks(stream, tone(1.0, 16000).data, (999,))
        await stream.end()
    assert {len(frame) for frame in stream.frames[:-1]} == {640}


@pytest.mark.parametrize("format", ["pcm_48000", "pcm_8000", "mulaw_8000", "alaw_16000", "f32_16000", "f32_44100"])
async def test_caller_audio_is_converted_to_the_wire_format(format: str) -> None:
    source = tone(1.0, 16000)
    async with RecordingSTTStream(format) as stream:
        await send_in_chunks(stream, encode(source, format), (317, 1001, 59))
        await stream.end()
    assert all(len(frame) == FRAME_BYTES for frame in stream.frames[:-1])
    received = decode(b"".join(stream.frames), WIRE)
    assert abs(received.duration_s - source.duration_s) < 0.005
    expected = decode(encode(decode(encode(source, format), format), WIRE), WIRE)
    middle = slice(3200, 3200 + 16000)  # away from the resampler's edges
    got = struct.unpack(f"<{len(received.data) // 2}h", received.data)[middle]
    want = struct.unpack(f"<{len(expected.data) // 2}h", expected.data)[middle]
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 64


async def test_f32_input_is_scaled_exactly() -> None:
    values = (0.0, 0.5, -0.5, 1.0, -1.0, 0.25)
    async with RecordingSTTStream("f32_16000") as stream:
        await stream.send_audio(struct.pack(f"<{len(values)}f", *values))
        await stream.end()
    assert struct.unpack(f"<{len(values)}h", b"".join(stream.frames)) == (0, 16384, -16384, 32767, -32768, 8192)


async def test_flush_sends_the_partial_frame_first() -> None:
    async with RecordingSTTStream() as stream:
        await stream.send_audio(bytes(FRAME_BYTES + 100))
        assert [len(frame) for frame in stream.frames] == [FRAME_BYTES]
        await stream.flush()
        assert [len(frame) for frame in stream.frames] == [FRAME_BYTES, 100]


async def test_flush_keeps_a_partial_sample_for_the_next_audio() -> None:
    async with RecordingSTTStream() as stream:
        await stream.send_audio(b"\x01\x02\x03")
        await stream.flush()
        assert stream.frames == [b"\x01\x02"]
        await stream.send_audio(b"\x04")
        await stream.end()
    assert b"".join(stream.frames) == b"\x01\x02\x03\x04"


@pytest.mark.parametrize(
    ("format", "data"), [("pcm_16000", b"\0" * 101), ("f32_16000", b"\0" * 6), ("pcm_8000", b"\0")]
)
async def test_audio_ending_inside_a_sample_fails_the_stream(format: str, data: bytes) -> None:
    async with RecordingSTTStream(format) as stream:
        await stream.send_audio(data)
        with pytest.raises(AudioFormatError, match="inside a sample"):
            await stream.end()
        assert stream.state is StreamState.FAILED
        with pytest.raises(AudioFormatError):
            await bounded(stream.collect())


@pytest.mark.parametrize("wrong", ["text", 12, [1, 2], None, PCMAudio(b"\0\0", 16000)])
async def test_send_audio_takes_only_bytes(wrong: Any) -> None:
    async with RecordingSTTStream() as stream:
        with pytest.raises(AudioFormatError, match="send_audio takes bytes"):
            await stream.send_audio(wrong)
        await stream.send_audio(bytearray(4))  # type: ignore[arg-type]
        await stream.send_audio(memoryview(bytes(4)))  # type: ignore[arg-type]
        await stream.end()
    assert b"".join(stream.frames) == bytes(8)


def test_containers_cannot_be_streamed() -> None:
    with pytest.raises(AudioFormatError, match="raw audio"):
        RecordingSTTStream("mp3")


class SlowSendSTTStream(RecordingSTTStream):
    """Its first frame waits for ``released``, as a send held up by backpressure does."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()

    async def _send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)
        if len(self.frames) == 1:
            await self.released.wait()


async def test_sends_held_up_by_backpressure_go_out_in_order_and_wait_their_turn() -> None:
    async with SlowSendSTTStream() as stream:
        first = asyncio.create_task(stream.send_audio(b"\x01" * FRAME_BYTES))
        await asyncio.sleep(0)
        second = asyncio.create_task(stream.send_audio(b"\x02" * FRAME_BYTES))
        flushed = asyncio.create_task(stream.flush())
        await asyncio.sleep(0.01)
        assert [frame[0] for frame in stream.frames] == [1]
        assert not (second.done() or flushed.done())  # each caller waits until its own items are out
        stream.released.set()
        await bounded(asyncio.gather(first, second))
        assert (await bounded(flushed)).flush_id == 1
    assert [frame[0] for frame in stream.frames] == [1, 2]


async def test_a_cancelled_send_leaves_what_others_queued_to_be_sent() -> None:
    async with SlowSendSTTStream() as stream:
        first = asyncio.create_task(stream.send_audio(b"\x01" * FRAME_BYTES))
        await asyncio.sleep(0)
        second = asyncio.create_task(stream.send_audio(b"\x02" * FRAME_BYTES))
        ended = asyncio.create_task(stream.end())
        await asyncio.sleep(0.01)
        first.cancel()  # the caller whose loop was sending gives up
        await bounded(asyncio.gather(second, ended))
        events = await bounded(stream.collect())
    assert [frame[0] for frame in stream.frames] == [1, 2] and events[-1] == StreamEnded()


# --- events and flush bookkeeping -----------------------------------------------------------------------------


async def test_flush_ids_increase_and_results_come_before_the_confirmation() -> None:
    async with RecordingSTTStream() as stream:
        await stream.send_audio(bytes(FRAME_BYTES))
        first = await stream.flush()
        second = await stream.flush()
        await stream.end()
        events = await stream.collect()
    assert (first.flush_id, second.flush_id) == (1, 2)
    assert events == [
        Ready(),
        Transcript("1 frames", is_final=True),
        Flushed(1),
        Transcript("1 frames", is_final=True),
        Flushed(2),
        StreamEnded(),
    ]


async def test_a_flush_resolves_when_its_confirmation_arrives_later() -> None:
    async with RecordingSTTStream(defer=True) as stream:
        flush = asyncio.create_task(stream.flush())
        await asyncio.sleep(0)
        assert not flush.done()
        stream._emit(Flushed(99))
        await asyncio.sleep(0)
        assert not flush.done()
        stream._emit(Flushed(1))
        assert await flush == Flushed(1)


async def test_iteration_stops_after_stream_ended() -> None:
    async with RecordingSTTStream() as stream:
        await stream.end()
        assert await stream.collect() == [Ready(), StreamEnded()]
        assert await bounded(stream.collect()) == []
        stream._emit(Transcript("late", is_final=True))
        assert await bounded(stream.collect()) == []


async def test_stream_ending_rejects_an_unconfirmed_flush() -> None:
    async with RecordingSTTStream(defer=True) as stream:
        flush = asyncio.create_task(stream.flush())
        await asyncio.sleep(0)
        stream._emit(StreamEnded())
        with pytest.raises(StreamClosed, match="before the flush"):
            await bounded(flush)


# --- failures ---------------------------------------------------------------------------------------------------


async def test_fail_raises_in_the_iterator_the_pending_flush_and_later_calls() -> None:
    error = TransportError("connection dropped", provider="test")
    async with RecordingSTTStream(defer=True) as stream:
        flush = asyncio.create_task(stream.flush())
        iterator = asyncio.create_task(stream.collect())
        await asyncio.sleep(0)
        stream._fail(error)
        with pytest.raises(TransportError) as flushed:
            await bounded(flush)
        with pytest.raises(TransportError) as iterated:
            await bounded(iterator)
        assert flushed.value is error and iterated.value is error
        with pytest.raises(TransportError):
            await bounded(stream.collect())
        with pytest.raises(TransportError):
            await stream.send_audio(b"\0\0")
        stream._emit(Transcript("after the failure", is_final=True))
        stream._fail(ConfigError("a second failure"))
        with pytest.raises(TransportError):
            await bounded(stream.collect())
    assert stream.state is StreamState.CLOSED


async def test_events_before_a_failure_are_delivered_first() -> None:
    async with RecordingSTTStream() as stream:
        stream._emit(Transcript("before", is_final=False))
        stream._fail(TransportError("dropped"))
        received = []
        with pytest.raises(TransportError):
            async for event in stream:
                received.append(event)
    assert received == [Ready(), Transcript("before", is_final=False)]


async def test_a_foreign_exception_is_wrapped_in_a_speechbridge_error() -> None:
    async with RecordingSTTStream() as stream:
        cause = OSError("socket gone")
        stream._fail(cause)
        with pytest.raises(SpeechBridgeError, match="socket gone") as info:
            await stream.collect()
    assert info.value.__cause__ is cause and info.value.provider == "test"


async def test_a_failing_background_task_fails_the_stream() -> None:
    async def receive() -> None:
        await asyncio.sleep(0)
        raise TransportError("server went away")

    async with RecordingSTTStream(defer=True) as stream:
        flush = asyncio.create_task(stream.flush())
        await asyncio.sleep(0)
        stream._spawn(receive())
        with pytest.raises(TransportError, match="server went away"):
            await bounded(flush)
        with pytest.raises(TransportError):
            await stream.collect()
        assert not stream._tasks


async def test_a_background_task_that_finishes_leaves_the_stream_open() -> None:
    async with RecordingSTTStream() as stream:
        await stream._spawn(asyncio.sleep(0))
        await stream.send_audio(b"\0\0")
        assert stream.state is StreamState.OPEN and not stream._tasks


async def test_aclose_cancels_tasks_rejects_flushes_and_wakes_iterators() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    stream = RecordingSTTStream(defer=True)
    await stream.open()
    task = stream._spawn(forever())
    flush = asyncio.create_task(stream.flush())
    iterator = asyncio.create_task(stream.collect())
    await started.wait()
    await stream.aclose()
    assert task.cancelled() and cancelled.is_set()
    with pytest.raises(StreamClosed):
        await bounded(flush)
    with pytest.raises(StreamClosed):
        await bounded(iterator)
    with pytest.raises(StreamClosed):
        await bounded(stream.collect())
    assert stream.state is StreamState.CLOSED and stream.closed == 1


async def test_aclose_from_inside_a_background_task() -> None:
    stream = RecordingSTTStream()
    await stream.open()

    async def close_myself() -> None:
        await stream.aclose()

    await bounded(stream._spawn(close_myself()))
    assert stream.state is StreamState.CLOSED


async def test_leaving_the_context_on_an_error_closes_the_stream() -> None:
    with pytest.raises(RuntimeError):
        async with RecordingSTTStream() as stream:
            stream._spawn(asyncio.Event().wait())
            raise RuntimeError("the caller failed")
    assert stream.state is StreamState.CLOSED and not stream._tasks and stream.closed == 1


# --- states -----------------------------------------------------------------------------------------------------


async def test_a_stream_must_be_opened_first() -> None:
    stream = RecordingSTTStream()
    for call in (stream.send_audio(b"\0\0"), stream.flush(), stream.end()):
        with pytest.raises(StreamClosed, match="not open yet"):
            await call


async def test_no_input_after_end_or_close() -> None:
    stream = RecordingSTTStream()
    await stream.open()
    with pytest.raises(StreamClosed, match="already open"):
        await stream.open()
    await stream.end()
    with pytest.raises(StreamClosed, match="no more input"):
        await stream.send_audio(b"\0\0")
    await stream.aclose()
    await stream.aclose()
    assert stream.closed == 1
    for call in (stream.send_audio(b"\0\0"), stream.flush(), stream.end(), stream.open()):
        with pytest.raises(StreamClosed):
            await call


async def test_a_failed_open_closes_the_stream() -> None:
    class Refused(RecordingSTTStream):
        async def _open(self) -> None:
            raise TransportError("refused")

    stream = Refused()
    with pytest.raises(TransportError):
        async with stream:
            pass
    assert stream.state is StreamState.CLOSED and stream.closed == 1


# --- TTS streams ------------------------------------------------------------------------------------------------


async def test_tts_audio_is_converted_to_the_requested_format() -> None:
    async with RecordingTTSStream("pcm_16000") as stream:
        await stream.send_text("abcd")
        await stream.send_text("")
        await stream.end()
        events = await stream.collect()
    chunks = [event for event in events if isinstance(event, AudioChunk)]
    assert {chunk.format for chunk in chunks} == {AudioFormat.pcm16(16000)}
    audio = decode(b"".join(chunk.data for chunk in chunks), "pcm_16000")
    assert abs(audio.duration_s - 0.04) < 0.001
    assert isinstance(events[-1], StreamEnded)


async def test_tts_flush_delivers_all_resampled_audio_before_the_confirmation() -> None:
    async with RecordingTTSStream("pcm_16000") as stream:
        for _ in range(2):
            await stream.send_text("abcd")
            await stream.flush()
            events = []
            while not isinstance(event := await bounded(anext(aiter(stream))), Flushed):
                events.append(event)
            audio = decode(b"".join(event.data for event in events), "pcm_16000")
            assert abs(audio.duration_s - 0.04) < 0.0005  # the resampler's held-back tail came out too


async def test_tts_wav_stream_leads_with_one_open_ended_header() -> None:
    async with RecordingTTSStream("wav") as stream:
        await stream.send_text("ab")
        await stream.send_text("cd")
        await stream.end()
        events = await stream.collect()
    chunks = [event.data for event in events if isinstance(event, AudioChunk)]
    assert stream.format == AudioFormat("wav", 24000)
    assert chunks[0][:4] == b"RIFF" and all(b"RIFF" not in chunk for chunk in chunks[1:])
    assert decode(b"".join(chunks)).duration_s == pytest.approx(0.04)


async def test_tts_wav_stream_with_no_text_is_still_a_wav() -> None:
    async with RecordingTTSStream("wav_16000") as stream:
        await stream.end()
        events = await stream.collect()
    chunks = [event.data for event in events if isinstance(event, AudioChunk)]
    assert len(chunks) == 1 and chunks[0][:4] == b"RIFF"


async def test_tts_send_text_takes_only_str_and_states_apply() -> None:
    stream = RecordingTTSStream("pcm_24000")
    with pytest.raises(StreamClosed):
        await stream.send_text("early")
    async with stream:
        with pytest.raises(ConfigError, match="takes a str"):
            await stream.send_text(b"bytes")  # type: ignore[arg-type]
        assert await stream.flush() == Flushed(1)
        await stream.end()
        with pytest.raises(StreamClosed):
            await stream.send_text("late")


@pytest.mark.parametrize("format", ["mp3", "flac", "ogg_opus"])
def test_tts_streams_refuse_containers_other_than_wav(format: str) -> None:
    with pytest.raises(AudioFormatError, match="use synthesize"):
        RecordingTTSStream(format)
