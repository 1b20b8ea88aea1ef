"""Speak a sentence with the local TTS, save it as a WAV, transcribe it back with the local STT, print both.

    python examples/roundtrip.py ["any sentence"]

No configuration, key or network: the ``local`` backend (hibari-tts and pocketsphinx) is found through its plugin.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from speechbridge.plugins import get_registry

__all__ = ["main"]

DEFAULT_TEXT = "The weather is lovely today, so let's have lunch in the park."


async def roundtrip(text: str) -> None:
    registry = get_registry()
    tts, stt = registry.tts("local")(), registry.stt("local")()
    speech = await tts.synthesize(text, format="wav")
    path = Path(tempfile.mkdtemp(prefix="speechbridge-")) / "roundtrip.wav"
    path.write_bytes(speech.audio)
    print(f"spoke:  {text}\nsaved:  {path} ({speech.duration_s:.1f} s)")
    transcript = await stt.transcribe(path)
    print(f"heard:  {transcript.text}")


def main() -> None:
    asyncio.run(roundtrip(" ".join(sys.argv[1:]) or DEFAULT_TEXT))


if __name__ == "__main__":
    main()
