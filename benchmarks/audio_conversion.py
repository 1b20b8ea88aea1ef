"""Throughput of speechbridge's audio conversion, in times real time, against the bare library call it wraps.

    .venv/bin/python benchmarks/audio_conversion.py [--seconds S] [--repeat N]

Each row converts ``S`` seconds of audio (default 30) with speechbridge (:mod:`speechbridge.audio`) and with the
library underneath called directly, the two taking turns ``N`` times (default 7). The audio is a speech-like
signal (harmonics of a gliding 90-250 Hz pitch, shaped into 0.3 s syllables, with a little noise), made at each
rate with ``soxr`` before the clock starts. "x real time" is audio seconds over the CPU seconds of this process
(``time.process_time``: on a shared machine it moves less than wall time, and every call here is single-threaded);
the table shows the median over the repeats, and the overhead is the median of the per-repeat ratios of
speechbridge's CPU time to the bare call's.

Rows: one-shot resampling (``resample`` against ``soxr.resample``, both HQ); streaming resampling in 20 ms chunks
(``StreamResampler`` against ``soxr.ResampleStream``); G.711 mu-law and A-law encode and decode (against a numpy
table lookup written as tersely as numpy allows); Ogg/Opus and WAV decoding (``decode`` against
``soundfile.read``); and the live path a stream takes, 20 ms chunks through ``StreamConverter`` and into 80 ms
frames from a ``Framer`` (against ``soxr.ResampleStream``, the numpy tables and a ``bytearray``).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import numpy as np
import soundfile  # type: ignore[import-untyped]
import soxr  # type: ignore[import-untyped]

from speechbridge.audio import (
    AudioFormat,
    Framer,
    PCMAudio,
    StreamConverter,
    StreamResampler,
    alaw_decode,
    alaw_encode,
    decode,
    resample,
    ulaw_decode,
    ulaw_encode,
)

__all__ = ["main"]

CHUNK_S: Final = 0.02
FRAME_S: Final = 0.08
SOURCE_RATE: Final = 48000
RESAMPLINGS: Final = ((8000, 16000), (16000, 24000), (44100, 16000), (48000, 16000))

Conversion = Callable[[], object]


def speech_like(seconds: float, rate: int) -> bytes:
    """A deterministic voiced signal at about -20 dBFS: syllables of harmonics over a gliding pitch, and noise."""
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * SOURCE_RATE)) / SOURCE_RATE
    pitch = 170 + 80 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SOURCE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(np.pi * t / 0.3), 0, None) ** 0.5
    signal = 0.12 * voice * syllables + 0.003 * rng.standard_normal(len(t))
    samples = soxr.resample(signal, SOURCE_RATE, rate, quality="HQ") if rate != SOURCE_RATE else signal
    return bytes(np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2").tobytes())


def chunks(data: bytes, rate: int, width: int = 2) -> list[bytes]:
    size = round(CHUNK_S * rate) * width
    return [data[start : start + size] for start in range(0, len(data), size)]


# --- bare library calls ------------------------------------------------------------------------------------------


def bare_resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    out = soxr.resample(np.frombuffer(pcm, dtype="<i2"), from_rate, to_rate, quality="HQ")
    return bytes(out.tobytes())


def bare_stream_resample(pieces: list[bytes], from_rate: int, to_rate: int) -> list[bytes]:
    stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
    out = [stream.resample_chunk(np.frombuffer(piece, dtype="<i2"), last=False).tobytes() for piece in pieces]
    out.append(stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True).tobytes())
    return out


def g711_tables(encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]) -> tuple[Any, Any]:
    """The codec's encode table (65536 entries, in order of the samples' bits with the sign bit flipped) and its
    decode table (256 entries), read off speechbridge's codec so that both sides compute the same thing."""
    every_sample = np.arange(-32768, 32768, dtype="<i2").tobytes()
    encode_table = np.frombuffer(encode(every_sample), dtype=np.uint8)
    decode_table = np.frombuffer(decode(bytes(range(256))), dtype="<i2")
    return encode_table, decode_table


def bare_encode(pcm: bytes, table: Any) -> bytes:
    return bytes(table[np.frombuffer(pcm, dtype="<u2") ^ 0x8000].tobytes())


def bare_decode(codes: bytes, table: Any) -> bytes:
    return bytes(table[np.frombuffer(codes, dtype=np.uint8)].tobytes())


def bare_read(data: bytes) -> bytes:
    samples, _ = soundfile.read(io.BytesIO(data), dtype="int16")
    return bytes(samples.tobytes())


def bare_live(pieces: list[bytes], from_rate: int, to_rate: int, tables: tuple[Any, Any]) -> list[bytes]:
    """mu-law in, resampled, mu-law out, in frames of 80 ms: the numpy and soxr calls alone, and a bytearray."""
    to_table, from_table = tables
    stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
    frame_bytes = round(FRAME_S * to_rate)
    buffer = bytearray()
    frames = []
    for piece in [*pieces, b""]:
        out = stream.resample_chunk(from_table[np.frombuffer(piece, dtype=np.uint8)], last=not piece)
        buffer += to_table[out.view("<u2") ^ 0x8000].tobytes()
        whole = len(buffer) - len(buffer) % frame_bytes
        frames += [bytes(buffer[start : start + frame_bytes]) for start in range(0, whole, frame_bytes)]
        del buffer[:whole]
    return frames


def bare_live_pcm(pieces: list[bytes], from_rate: int, to_rate: int) -> list[bytes]:
    """16-bit PCM in, resampled, in frames of 80 ms: soxr alone, and a bytearray."""
    stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
    frame_bytes = round(FRAME_S * to_rate) * 2
    buffer = bytearray()
    frames = []
    for piece in [*pieces, b""]:
        buffer += stream.resample_chunk(np.frombuffer(piece, dtype="<i2"), last=not piece).tobytes()
        whole = len(buffer) - len(buffer) % frame_bytes
        frames += [bytes(buffer[start : start + frame_bytes]) for start in range(0, whole, frame_bytes)]
        del buffer[:whole]
    return frames


# --- speechbridge ------------------------------------------------------------------------------------------------


def speechbridge_stream_resample(pieces: list[bytes], from_rate: int, to_rate: int) -> list[bytes]:
    resampler = StreamResampler(from_rate, to_rate)
    out = [resampler.process(piece) for piece in pieces]
    out.append(resampler.flush())
    return out


def speechbridge_live(pieces: list[bytes], source: AudioFormat, target: AudioFormat) -> list[bytes]:
    converter = StreamConverter(source, target)
    framer = Framer.for_format(target, FRAME_S * 1000)
    frames = []
    for piece in pieces:
        frames += framer.push(converter.process(piece))
    frames += framer.push(converter.flush())
    return frames


# --- the rows ----------------------------------------------------------------------------------------------------


def rows(seconds: float) -> list[tuple[str, Conversion, Conversion]]:
    """(what, speechbridge's call, the bare call), each over ``seconds`` of audio, with inputs made in advance."""
    audio = {rate: speech_like(seconds, rate) for rate in (8000, 16000, 24000, 44100, 48000)}
    table: list[tuple[str, Conversion, Conversion]] = []
    for source, target in RESAMPLINGS:
        name = f"{source / 1000:g}k -> {target / 1000:g}k"
        table.append((
            f"resample one-shot {name}",
            partial(resample, PCMAudio(audio[source], source), target),
            partial(bare_resample, audio[source], source, target),
        ))  # fmt: skip
    for source, target in RESAMPLINGS:
        pieces = chunks(audio[source], source)
        table.append((
            f"resample streaming, 20 ms chunks, {source / 1000:g}k -> {target / 1000:g}k",
            partial(speechbridge_stream_resample, pieces, source, target),
            partial(bare_stream_resample, pieces, source, target),
        ))  # fmt: skip
    telephone = audio[8000]
    ulaw, alaw = ulaw_encode(telephone), alaw_encode(telephone)
    ulaw_tables, alaw_tables = g711_tables(ulaw_encode, ulaw_decode), g711_tables(alaw_encode, alaw_decode)
    table += [
        ("mu-law encode 8k", partial(ulaw_encode, telephone), partial(bare_encode, telephone, ulaw_tables[0])),
        ("mu-law decode 8k", partial(ulaw_decode, ulaw), partial(bare_decode, ulaw, ulaw_tables[1])),
        ("A-law encode 8k", partial(alaw_encode, telephone), partial(bare_encode, telephone, alaw_tables[0])),
        ("A-law decode 8k", partial(alaw_decode, alaw), partial(bare_decode, alaw, alaw_tables[1])),
    ]
    for rate in (16000, 48000):
        ogg = io.BytesIO()
        soundfile.write(ogg, np.frombuffer(audio[rate], dtype="<i2"), rate, format="OGG", subtype="OPUS")
        opus = ogg.getvalue()
        table.append((f"Ogg/Opus decode {rate / 1000:g}k", partial(decode, opus), partial(bare_read, opus)))
    wav = io.BytesIO()
    soundfile.write(wav, np.frombuffer(audio[16000], dtype="<i2"), 16000, format="WAV", subtype="PCM_16")
    table.append(("WAV read 16k", partial(decode, wav.getvalue()), partial(bare_read, wav.getvalue())))
    telephone_pieces = chunks(ulaw, 8000, width=1)
    table.append((
        "live mu-law 8k -> mu-law 16k, 20 ms chunks into 80 ms frames",
        partial(speechbridge_live, telephone_pieces, AudioFormat("mulaw", 8000), AudioFormat("mulaw", 16000)),
        partial(bare_live, telephone_pieces, 8000, 16000, ulaw_tables),
    ))  # fmt: skip
    studio_pieces = chunks(audio[48000], 48000)
    table.append((
        "live pcm 48k -> pcm 16k, 20 ms chunks into 80 ms frames",
        partial(speechbridge_live, studio_pieces, AudioFormat.pcm16(48000), AudioFormat.pcm16(16000)),
        partial(bare_live_pcm, studio_pieces, 48000, 16000),
    ))  # fmt: skip
    return table


def cpu_seconds(conversion: Conversion) -> float:
    start = time.process_time()
    conversion()
    return time.process_time() - start


def measure(table: list[tuple[str, Conversion, Conversion]], repeat: int) -> list[tuple[str, list[float], list[float]]]:
    """CPU seconds of each call per repeat, speechbridge and bare taking turns (after one warm-up call of each)."""
    results = []
    for name, ours, bare in table:
        ours(), bare()
        mine, theirs = [], []
        for _ in range(repeat):
            mine.append(cpu_seconds(ours))
            theirs.append(cpu_seconds(bare))
        results.append((name, mine, theirs))
    return results


def report(args: argparse.Namespace, results: list[tuple[str, list[float], list[float]]]) -> None:
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.seconds:g} s of audio per call, {args.repeat} repeats; "
        f"numpy {np.__version__}, soxr {soxr.__version__}, soundfile {soundfile.__version__} "
        f"(libsndfile {soundfile.__libsndfile_version__})"
    )
    print()
    print("| conversion | speechbridge | bare library | speechbridge / bare (CPU time) |")
    print("|---|---|---|---|")
    for name, mine, theirs in results:
        ratios = [ours / bare if bare > 0 else math.inf for ours, bare in zip(mine, theirs, strict=True)]
        ours_x = args.seconds / statistics.median(mine)
        bare_x = args.seconds / statistics.median(theirs)
        spread = f"{min(ratios):.2f} to {max(ratios):.2f}"
        print(f"| {name} | {ours_x:,.0f}x | {bare_x:,.0f}x | {statistics.median(ratios):.2f} ({spread}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio seconds per call (default 30)")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls of each kind per row (default 7)")
    args = parser.parse_args()
    report(args, measure(rows(args.seconds), args.repeat))


if __name__ == "__main__":
    main()
