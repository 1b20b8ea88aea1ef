"""Compare two STT profiles offline: the local engines, and the Gradium backend talking to a local Gradium front.

    python examples/compare_offline.py [OUT_DIR] [--fast]

It speaks a few sentences with the local TTS into OUT_DIR/data (each WAV next to its .txt transcript), serves
Gradium's API on 127.0.0.1 with the same local engines behind it, and compares the two profiles streaming (at
real-time pace, or as fast as they go with ``--fast``) and batch. The table is printed, and OUT_DIR/results gets the
runs (JSONL, CSV), summary.json and report.html. No key and no network: the difference between the profiles is what
the vendor protocol costs. Run it again and every run is resumed from OUT_DIR/results; the same folder works with
the command line:

    speechbridge compare OUT_DIR/data --provider local --mode both --out OUT_DIR/results
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from speechbridge_gradium.server import make_app

from speechbridge import load_config
from speechbridge.compare import compare_stt
from speechbridge.compare.report import format_differences, format_table, write_reports
from speechbridge.testing import LiveServer

__all__ = ["main", "make_dataset", "run"]

SENTENCES = {
    "weather": "The weather is lovely today, so let's have lunch in the park.",
    "booking": "Please book a table for two people at seven tonight.",
    "delivery": "Your parcel will arrive on Tuesday between 9 and 11.",
    "support": "I would like to speak to someone about my last invoice.",
    "travel": "The next train to the airport leaves from platform 4 in ten minutes.",
}


async def make_dataset(folder: Path) -> Path:
    """Speak :data:`SENTENCES` with the local TTS into ``folder``: ``<name>.wav`` next to ``<name>.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    async with load_config().tts(provider="local") as tts:
        for name, text in SENTENCES.items():
            if not (folder / f"{name}.wav").exists():
                (folder / f"{name}.wav").write_bytes((await tts.synthesize(text, format="wav")).audio)
            (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


async def run(out_dir: Path, *, fast: bool = False) -> None:
    data = await make_dataset(out_dir / "data")
    config = load_config()
    async with config.stt(provider="local") as engines, LiveServer(make_app(engines, None)) as front:
        profiles = {
            "local": config.stt(provider="local"),
            "gradium-front": config.stt(provider="gradium", base_url=f"{front.url}/api", api_key="offline"),
        }
        try:
            results = out_dir / "results"
            comparison = await compare_stt(data, profiles, mode="both", fast=fast, out_dir=results, config=config)
        finally:
            for provider in profiles.values():
                await provider.aclose()
    written = write_reports([comparison], out_dir / "results")
    print(format_table(comparison), format_differences(comparison), sep="\n\n")
    print(f"\nresults: {comparison.runs_file}, {', '.join(map(str, written))}")


def main() -> None:
    folders = [arg for arg in sys.argv[1:] if arg != "--fast"]
    out_dir = Path(folders[0]) if folders else Path(tempfile.mkdtemp(prefix="speechbridge-compare-"))
    asyncio.run(run(out_dir, fast="--fast" in sys.argv[1:]))


if __name__ == "__main__":
    main()
