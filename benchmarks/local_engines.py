"""Speed of the local backend through speechbridge, engines warm: STT real-time factor and TTS times real time.

    .venv/bin/python benchmarks/local_engines.py [--repeat N]

Prints a Markdown table (median and best of N runs). STT input is hibari speech of twelve sentences, each followed by
0.6 s of silence, as 16 kHz PCM; it is sent in 80 ms chunks as fast as the stream takes it. RTF is processing time
over audio time (lower is faster); "x real time" is its inverse.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from sentences import SENTENCES as CORPUS

from speechbridge.audio import AudioFormat
from speechbridge.events import AudioChunk, Transcript
from speechbridge.plugins import get_registry
from speechbridge.stt import STTProvider
from speechbridge.tts import TTSProvider

__all__ = ["main"]

SENTENCES = CORPUS[:12]  # the twelve the recorded figures were measured on
STT_TARGET_RTF = 0.15
TTS_TARGET_X = 100.0
CHUNK_BYTES = AudioFormat.pcm16(16000).bytes_for(0.08)


async def timed(action: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        await action()
        seconds.append(time.perf_counter() - start)
    return seconds


async def tts_batch(tts: TTSProvider[object]) -> None:
    for text in SENTENCES:
        await tts.synthesize(text)


async def tts_stream(tts: TTSProvider[object]) -> None:
    async with tts.stream() as stream:
        await stream.send_text(" ".join(SENTENCES))
        await stream.end()
        assert any(isinstance(event, AudioChunk) for event in await stream.collect())


async def stt_stream(stt: STTProvider[object], audio: bytes) -> None:
    async with stt.stream(format="pcm_16000") as stream:
        for start in range(0, len(audio), CHUNK_BYTES):
            await stream.send_audio(audio[start : start + CHUNK_BYTES])
        await stream.end()
        assert any(isinstance(event, Transcript) and event.text for event in await stream.collect())


async def run(repeat: int) -> None:
    registry = get_registry()
    tts, stt = registry.tts("local")(), registry.stt("local")()
    pause = bytes(AudioFormat.pcm16(16000).bytes_for(0.6))
    audio = b"".join([(await tts.synthesize(text, format="pcm_16000")).audio + pause for text in SENTENCES])
    stt_audio_s = len(audio) / 32000
    tts_audio_s = sum([(await tts.synthesize(text)).duration_s or 0.0 for text in SENTENCES])
    await stt.transcribe(audio, format="pcm_16000")  # warm: load a decoder into the pool

    rows = [
        ("STT streaming", stt_audio_s, await timed(lambda: stt_stream(stt, audio), repeat), "rtf"),
        ("STT batch", stt_audio_s, await timed(lambda: stt.transcribe(audio, format="pcm_16000"), repeat), "rtf"),
        ("TTS batch (12 calls)", tts_audio_s, await timed(lambda: tts_batch(tts), repeat), "x"),
        ("TTS streaming (1 stream)", tts_audio_s, await timed(lambda: tts_stream(tts), repeat), "x"),
    ]
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{repeat} runs each; STT audio {stt_audio_s:.1f} s, TTS audio {tts_audio_s:.1f} s\n"
    )
    print("| what | median | best | target |")
    print("|---|---|---|---|")
    for name, audio_s, seconds, kind in rows:
        median, best = statistics.median(seconds), min(seconds)
        if kind == "rtf":
            target = f"RTF <= {STT_TARGET_RTF} {'ok' if median / audio_s <= STT_TARGET_RTF else 'MISSED'}"
            print(f"| {name} | RTF {median / audio_s:.3f} | RTF {best / audio_s:.3f} | {target} |")
        else:
            target = f">= {TTS_TARGET_X:.0f}x {'ok' if audio_s / median >= TTS_TARGET_X else 'MISSED'}"
            print(f"| {name} | {audio_s / median:.0f}x real time | {audio_s / best:.0f}x | {target} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (default 5)")
    asyncio.run(run(parser.parse_args().repeat))


if __name__ == "__main__":
    main()
