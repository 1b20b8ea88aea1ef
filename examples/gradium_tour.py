"""A tour of the Gradium backend: TTS streaming, a file over REST, a live stream with turn events.

GRADIUM_API_KEY=... python examples/gradium_tour.py                  # against Gradium itself
speechbridge serve gradium --backend local &                        # or offline, against a local front
GRADIUM_API_KEY=any python examples/gradium_tour.py --base-url http://127.0.0.1:8080/api
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from speechbridge import AudioChunk, STTStream, Transcript, TurnEnded, load_config
from speechbridge.audio import PCMAudio, encode

__all__ = ["tour"]

PIECES = ("Please book a table ", "for two people ", "at seven tonight.")
CHUNK = 3200  # 100 ms of 16 kHz audio


async def tour(base_url: str | None = None) -> list[str]:
    """Run the tour; returns the lines it printed."""
    lines: list[str] = []
    say = lines.append
    options = {"base_url": base_url} if base_url else {}
    config = load_config()
    async with config.tts(provider="gradium", **options) as tts, config.stt(provider="gradium", **options) as stt:
        # 1. TTS streaming: text goes in as it is written (say, by an LLM), audio comes out as it is made.
        audio = bytearray()
        async with tts.stream(format="pcm_16000") as speech:
            for piece in PIECES:
                await speech.send_text(piece)
            await speech.end()
            async for event in speech:
                if isinstance(event, AudioChunk):
                    audio += event.data
        path = Path(tempfile.mkdtemp(prefix="speechbridge-")) / "request.wav"
        path.write_bytes(encode(PCMAudio(bytes(audio), 16000), "wav"))
        say(f"spoke {len(audio) / 32000:.1f} s of audio into {path}")

        # 2. A file over REST.
        say(f"REST heard: {(await stt.transcribe(path)).text}")

        # 3. A live stream: interim words as they come, then the turn, ended by Gradium's semantic VAD.
        async with stt.stream(format="pcm_16000") as live:
            feeding = asyncio.create_task(feed(live, bytes(audio)))
            async for event in live:
                if isinstance(event, Transcript) and not event.is_final:
                    say(f"  ... {event.text}")
                elif isinstance(event, TurnEnded):
                    say(f"turn ended: {event.text}")
            await feeding
    for line in lines:
        print(line)
    return lines


async def feed(live: STTStream, audio: bytes) -> None:
    """Send the audio as a microphone would (faster than real time here), then silence, then end."""
    for start in range(0, len(audio), CHUNK):
        await live.send_audio(audio[start : start + CHUNK])
    await live.send_audio(bytes(2 * 32000))  # two seconds of silence: the speaker has finished
    await live.end()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a Gradium-compatible server, e.g. http://127.0.0.1:8080/api")
    asyncio.run(tour(parser.parse_args().base_url))
