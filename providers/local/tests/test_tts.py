from __future__ import annotations

import asyncio

import pytest
from speechbridge_local import LocalTTS

from speechbridge.audio import AudioFormat, decode
from speechbridge.errors import AudioFormatError, ConfigError
from speechbridge.events import AudioChunk, Flushed, Ready, StreamEnded, TTSEvent
from speechbridge.tts import Voice

TEXT = "The ferry leaves at noon. Dr. Smith will meet you at the dock!"


def audio_of(events: list[TTSEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, AudioChunk))


async def test_synthesize_is_pcm_24k_and_deterministic(tts: LocalTTS) -> None:
    first = await tts.synthesize(TEXT)
    assert first.format == AudioFormat.pcm16(24000) and first.words == ()
    assert first.duration_s == pytest.approx(len(first.audio) / 48000)
    assert 3.0 < first.duration_s < 8.0
    assert (await tts.synthesize(TEXT)).audio == first.audio
    assert (await tts.synthesize(TEXT, seed=7)).audio != first.audio
    faster = await tts.synthesize(TEXT, speed=1.5)
    assert faster.duration_s is not None and faster.duration_s < first.duration_s * 0.85


@pytest.mark.parametrize(
    ("spec", "rate"),
    [("wav", 24000), ("wav_16000", 16000), ("mulaw_8000", 8000), ("opus", 24000), ("flac", 24000), ("mp3", 24000)],
)
async def test_formats_decode_back(tts: LocalTTS, spec: str, rate: int) -> None:
    result = await tts.synthesize("Turn left at the second light.", format=spec)
    assert result.format.sample_rate == rate and result.format.encoding == AudioFormat.parse(spec).encoding
    pcm = decode(result.audio, result.format if result.format.is_raw else None)
    assert result.duration_s is not None
    assert pcm.duration_s == pytest.approx(result.duration_s, abs=0.08)


async def test_unspeakable_text_is_an_error(tts: LocalTTS) -> None:
    with pytest.raises(ConfigError, match="empty"):
        await tts.synthesize("   ")
    with pytest.raises(ConfigError, match="nothing to speak"):
        await tts.synthesize("...")


async def test_voices_are_the_offline_ones(tts: LocalTTS) -> None:
    assert await tts.voices() == [Voice("heart", "Heart", "en-US", "American English, female; ships inside hibari-tts")]


async def test_stream_speaks_each_sentence_once_the_next_begins(tts: LocalTTS) -> None:
    first_sentence = (await tts.synthesize("The ferry leaves at noon.")).audio
    events: list[TTSEvent] = []

    async def audio_so_far(at_least: int) -> bytes:
        for _ in range(100):
            if len(audio_of(events)) >= at_least:
                break
            await asyncio.sleep(0.05)
        return audio_of(events)

    async with tts.stream() as stream:

        async def read() -> None:
            async for event in stream:
                events.append(event)

        reader = asyncio.create_task(read())
        for token in "The ferry leaves at noon. Dr.".split(" "):
            await stream.send_text(token + " ")
        assert await audio_so_far(len(first_sentence)) == first_sentence
        await stream.send_text("Smith will meet you at the dock!")
        await asyncio.sleep(0.3)
        assert audio_of(events) == first_sentence  # "Dr." ends no sentence, and the last one waits for more text
        flushed = await stream.flush()
        await stream.end()
        await reader
    assert flushed == Flushed(1)
    assert isinstance(events[0], Ready)
    assert [type(e) for e in events[-3:]] == [AudioChunk, Flushed, StreamEnded]
    assert audio_of(events) == (await tts.synthesize(TEXT)).audio


async def test_stream_in_telephone_format(tts: LocalTTS) -> None:
    async with tts.stream(format="mulaw_8000") as stream:
        await stream.send_text("Hello from the local engine.")
        await stream.end()
        events = await stream.collect()
    chunks = [e for e in events if isinstance(e, AudioChunk)]
    assert chunks and all(chunk.format == AudioFormat("mulaw", 8000) for chunk in chunks)
    pcm = decode(audio_of(events), "mulaw_8000")
    batch = await tts.synthesize("Hello from the local engine.")
    assert pcm.duration_s == pytest.approx(batch.duration_s, abs=0.02)


async def test_stream_as_wav_leads_with_a_header(tts: LocalTTS) -> None:
    async with tts.stream(format="wav") as stream:
        await stream.send_text("Short one.")
        await stream.end()
        audio = audio_of(await stream.collect())
    assert audio[:4] == b"RIFF" and decode(audio).sample_rate == 24000


async def test_stream_refuses_containers(tts: LocalTTS) -> None:
    with pytest.raises(AudioFormatError, match="raw audio or wav"):
        tts.stream(format="opus")


async def test_flush_with_nothing_pending_confirms(tts: LocalTTS) -> None:
    async with tts.stream() as stream:
        assert await stream.flush() == Flushed(1)
        await stream.end()
        assert [type(e) for e in await stream.collect()] == [Ready, Flushed, StreamEnded]
