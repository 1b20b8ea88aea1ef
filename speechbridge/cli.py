"""The ``speechbridge`` command.

    speechbridge transcribe FILE [--json] [--stream [--speed X | --fast]] [--provider P | --profile N] [-O KEY=VALUE]
    speechbridge speak TEXT -o OUT [--voice V] [--format F] [--provider P | --profile N] [-O KEY=VALUE]
    speechbridge providers [--json]
    speechbridge voices [--provider P | --profile N] [-O KEY=VALUE] [--json]
    speechbridge serve FRONT [--backend B | --stt-backend S --tts-backend T] [--profile N] [--host H] [--port P]
                             [--api-key-env NAME | --allow-any-key]
    speechbridge config check
    speechbridge migrate VENDOR FILE [--json]
    speechbridge compare [DIR_OR_MANIFEST] (--profile N | --provider P)... [--mode stream|batch|both] [--fast]
                         [--concurrency N] [--out DIR] [--fresh] [--baseline N] [--normalizer NAME]
                         [--tts TEXTS_FILE [--judge-stt NAME]]

``--config PATH`` picks the config file and ``--debug`` shows tracebacks. An error prints one line,
``speechbridge: error: ...``, and exits with 2 for bad configuration, options or input, 1 when a provider or the
connection fails, and 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Coroutine, Sequence
from importlib import metadata
from typing import Any, NoReturn, TextIO

import attrs

from . import plugins, serving
from .audio import PCMAudio, read_file
from .compare import Comparison, Progress, compare_stt, compare_tts
from .compare.metrics import NORMALIZERS
from .compare.report import format_differences, format_table, write_reports
from .config import KINDS, Config, load_config
from .errors import AudioFormatError, ConfigError, SpeechBridgeError, UnsupportedFeature
from .events import Transcript
from .migrate import read_options
from .plugins import ProviderRegistry
from .stt import STTProvider
from .sync import input_format, speak
from .testing.plugin import scripted_registry
from .tts import Voice

__all__ = ["main"]

PROG = "speechbridge"
USAGE_ERRORS = (ConfigError, AudioFormatError, UnsupportedFeature)
CHUNK_S = 0.1  # --stream pushes audio in chunks of this many seconds
LONG_FILE_S = 30.0  # batch transcription of a file this long shows a status line on a terminal
SCRIPTED = "scripted"  # the test doubles' name: `serve --backend scripted` adds them to the registry
COMPARE_MODES = ("stream", "batch", "both")
COMPARE_OUT = "compare-results"
BAR_WIDTH = 24


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is read as TOML when it parses (numbers, true/false, lists), else as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key in ("provider", "profile", "voice", "format", "config"):
        raise argparse.ArgumentTypeError(f"use --{key}, not -O {key}=...")
    try:
        return key, tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return key, raw


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _count(text: str) -> int:
    if not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def _target(kind: str) -> Callable[[str], tuple[str, str]]:
    def parse(text: str) -> tuple[str, str]:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected a {kind} name")
        return kind, text.strip()

    return parse


def _port(text: str) -> int:
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="the config file to use")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    choice = _Parser(add_help=False)
    choice.add_argument("--provider", help="the provider to use, overriding the config")
    choice.add_argument("--profile", help="a named profile of the config")
    choice.add_argument(
        "-O", "--option", dest="options", metavar="KEY=VALUE", type=_option, action="append", default=[],
        help="a provider option (repeatable), e.g. -O language=en",
    )  # fmt: skip

    parser = _Parser(prog=PROG, description="One interface for speech-to-text and text-to-speech.", parents=[common])
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    transcribe = commands.add_parser("transcribe", parents=[common, choice], help="print the text of an audio file")
    transcribe.add_argument("file", help="an audio file: wav, flac, ogg/opus, mp3, or raw with --format")
    transcribe.add_argument("--json", action="store_true", help="print JSON with the text, words and timings")
    transcribe.add_argument("--format", help="the format of a raw file, e.g. pcm_16000 or mulaw_8000")
    transcribe.add_argument("--stream", action="store_true", help="send the file through a live stream")
    pace = transcribe.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive, help="with --stream: push audio X times faster than real time")
    pace.add_argument("--fast", action="store_true", help="with --stream: push audio as fast as possible")
    transcribe.set_defaults(run=_transcribe)

    speak_ = commands.add_parser("speak", parents=[common, choice], help="synthesise speech into an audio file")
    speak_.add_argument("text", help="the text to speak; - reads it from standard input")
    speak_.add_argument("-o", "--output", required=True, help="the file to write (- for standard output)")
    speak_.add_argument("--voice", help="the voice to use")
    speak_.add_argument("--format", help="the output format (default: from the extension), e.g. mulaw_8000")
    speak_.set_defaults(run=_speak)

    providers = commands.add_parser("providers", parents=[common], help="list the installed providers")
    providers.add_argument("--json", action="store_true", help="print JSON")
    providers.set_defaults(run=_providers)

    voices = commands.add_parser("voices", parents=[common, choice], help="list the voices of the TTS provider")
    voices.add_argument("--json", action="store_true", help="print JSON")
    voices.set_defaults(run=_voices)

    serve = commands.add_parser("serve", parents=[common], help="serve a vendor's API (a front) backed by any provider")
    serve.add_argument("front", help="the API to serve, e.g. gradium ('speechbridge providers' lists the fronts)")
    serve.add_argument("--backend", metavar="NAME", help="the provider behind STT and TTS (default: the configured)")
    serve.add_argument("--stt-backend", metavar="NAME", help="the STT provider behind the front")
    serve.add_argument("--tts-backend", metavar="NAME", help="the TTS provider behind the front")
    serve.add_argument("--profile", help="a named profile of the config to make the providers from")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="the port to listen on (default: 8080; 0: any free)")
    keys = serve.add_mutually_exclusive_group()
    keys.add_argument("--api-key-env", metavar="NAME", help="clients must send the key held in this variable")
    keys.add_argument("--allow-any-key", action="store_true", help="accept any key (the default on a loopback host)")
    serve.set_defaults(run=_serve)

    compare = commands.add_parser(
        "compare", parents=[common], help="compare STT (and TTS) profiles on your audio: WER, latency, cost",
        description="Run every recording through every profile; print median and P95 per profile, write per-run "
        "JSONL and CSV, summary.json and a self-contained report.html to --out. A rerun resumes.",
    )  # fmt: skip
    compare.add_argument("source", nargs="?", help="a folder of audio + .txt transcripts, or a .csv/.jsonl manifest")
    compare.add_argument(
        "--profile", dest="targets", action="append", type=_target("profile"), default=[], metavar="NAME",
        help="a profile of the config to compare (repeatable; the first is the baseline unless --baseline)",
    )  # fmt: skip
    compare.add_argument(
        "--provider", dest="targets", action="append", type=_target("provider"), metavar="NAME",
        help="a provider to compare with its configured options (repeatable)",
    )  # fmt: skip
    compare.add_argument(
        "--mode", choices=COMPARE_MODES, default="stream", help="stream, batch or both (default: stream)"
    )
    compare.add_argument("--fast", action="store_true", help="stream audio as fast as the provider takes it")
    compare.add_argument(
        "--concurrency", type=_count, default=2, metavar="N", help="runs at once per provider (default 2)"
    )
    compare.add_argument("--out", default=COMPARE_OUT, metavar="DIR", help=f"the results folder ({COMPARE_OUT})")
    compare.add_argument("--fresh", action="store_true", help="discard earlier runs in --out instead of resuming")
    compare.add_argument("--baseline", metavar="NAME", help="the profile the others are compared with")
    compare.add_argument("--normalizer", choices=NORMALIZERS, default="default", help="text normalizer for WER")
    compare.add_argument("--tts", metavar="TEXTS_FILE", help="also compare TTS on these texts (.txt, .csv, .jsonl)")
    compare.add_argument("--judge-stt", metavar="NAME", help="with --tts: the STT profile or provider that listens")
    compare.set_defaults(run=_compare)

    migrate = commands.add_parser(
        "migrate", parents=[common], help="turn a vendor's own options into speechbridge config",
        description="Print the speechbridge.toml for FILE (the vendor's options: JSON, .toml or a query string/URL) "
        "and list on stderr every option that did not map, with the reason.",
    )  # fmt: skip
    migrate.add_argument("vendor", help="the vendor the options are for, e.g. deepgram")
    migrate.add_argument("file", help="the vendor's options: a JSON object, a .toml file, or a query string or URL")
    migrate.add_argument("--json", action="store_true", help="print JSON with the config, unmapped options and notes")
    migrate.set_defaults(run=_migrate)

    config = commands.add_parser("config", parents=[common], help="inspect the configuration")
    config_commands = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = config_commands.add_parser("check", parents=[common], help="make each configured provider; list problems")
    check.set_defaults(run=_config_check)
    return parser


def _version() -> str:
    try:
        return metadata.version("speechbridge")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except USAGE_ERRORS as exc:
        return _report(exc, 2, debug)
    except SpeechBridgeError as exc:
        return _report(exc, 1, debug)
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except Exception as exc:
        return _report(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1, debug)


def _report(error: object, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"{PROG}: error: {error}", file=sys.stderr)
    return code


# --- transcribe -------------------------------------------------------------------------------------------------


def _transcribe(args: argparse.Namespace) -> int:
    if (args.speed or args.fast) and not args.stream:
        raise ConfigError("--speed and --fast go with --stream")
    config = load_config(getattr(args, "config", None))
    audio = read_file(args.file, input_format(args.file, args.format))
    stt = config.stt(profile=args.profile, provider=args.provider, **dict(args.options))
    status = StatusLine(sys.stderr)
    try:
        if args.stream:
            speed = None if args.fast else args.speed or 1.0
            asyncio.run(_transcribe_stream(stt, audio, speed, args.json, status))
        else:
            transcript = asyncio.run(_transcribe_batch(stt, audio, status))
            print(json.dumps(_transcript_json(transcript)) if args.json else transcript.text)
    finally:
        status.clear()
    return 0


async def _transcribe_batch(stt: STTProvider[Any], audio: PCMAudio, status: StatusLine) -> Transcript:
    async with stt:
        job = asyncio.ensure_future(stt.transcribe(audio))
        started = time.monotonic()
        while audio.duration_s >= LONG_FILE_S and not job.done():
            status.show(f"transcribing {audio.duration_s:.1f} s of audio ... {time.monotonic() - started:.1f} s")
            await asyncio.wait({job}, timeout=0.2)
        return await job


async def _transcribe_stream(
    stt: STTProvider[Any], audio: PCMAudio, speed: float | None, as_json: bool, status: StatusLine
) -> None:
    """Push ``audio`` at ``speed`` times real time (None: at once); finals to stdout, interims on the status line."""
    total = audio.duration_s
    chunk = audio.format.bytes_for(CHUNK_S)
    pushed_s, interim = 0.0, ""

    def show() -> None:
        status.show(f"{_bar(pushed_s, total)}  {interim}")

    async with stt, stt.stream(format=audio.format) as stream:

        async def push() -> None:
            nonlocal pushed_s
            loop = asyncio.get_running_loop()
            started = loop.time()
            for offset in range(0, len(audio.data), chunk):
                piece = audio.data[offset : offset + chunk]
                await stream.send_audio(piece)
                pushed_s += len(piece) / audio.format.bytes_for(1.0)
                show()
                delay = started + pushed_s / speed - loop.time() if speed else 0.0
                await asyncio.sleep(max(delay, 0.0))
            await stream.end()

        async def receive() -> None:
            nonlocal interim
            async for event in stream:
                if isinstance(event, Transcript) and event.is_final:
                    interim = ""
                    status.clear()
                    if event.text or as_json:
                        print(json.dumps(_transcript_json(event)) if as_json else event.text, flush=True)
                    show()
                elif isinstance(event, Transcript):
                    interim = event.text
                    show()

        await _together(push(), receive())


async def _together(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutines`` concurrently; the first to fail cancels the others and its error is raised."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def _transcript_json(transcript: Transcript) -> dict[str, Any]:
    return {
        "text": transcript.text,
        "start_s": transcript.start_s,
        "end_s": transcript.end_s,
        "language": transcript.language,
        "confidence": transcript.confidence,
        "words": [attrs.asdict(word) for word in transcript.words],
    }


class StatusLine:
    """One line on a terminal's stderr that rewrites itself; silent when stderr is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r{text[:200]}\x1b[K")
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _bar(done: float, total: float, width: int = 24) -> str:
    filled = round(width * min(done / total, 1.0)) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:.1f}/{total:.1f} s"


# --- speak ------------------------------------------------------------------------------------------------------


def _speak(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    config = load_config(getattr(args, "config", None))
    choice = {"provider": args.provider, "profile": args.profile, "config": config, "voice": args.voice}
    if args.output == "-":
        synthesis = speak(text, format=args.format or "wav", **choice, **dict(args.options))
        sys.stdout.buffer.write(synthesis.audio)
        sys.stdout.buffer.flush()
        return 0
    synthesis = speak(text, args.output, format=args.format, **choice, **dict(args.options))
    if sys.stderr.isatty():
        seconds = f"{synthesis.duration_s:.2f} s of " if synthesis.duration_s is not None else ""
        print(f"{args.output}: {seconds}{synthesis.format} audio", file=sys.stderr)
    return 0


# --- providers and config ---------------------------------------------------------------------------------------


def _providers(args: argparse.Namespace) -> int:
    registry = plugins.get_registry()
    rows = [
        {
            "name": info.name,
            "kind": info.kind,
            "distribution": info.distribution,
            "version": info.version,
            "plugin": info.plugin,
            "capabilities": attrs.asdict(info.capabilities),
        }
        for info in registry
    ]
    rows += [
        {
            "name": front.name,
            "kind": "front",
            "distribution": front.distribution,
            "version": front.version,
            "plugin": front.plugin,
            "capabilities": None,
        }
        for front in registry.fronts()
    ]
    rows.sort(key=lambda row: (row["name"], row["kind"]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "KIND", "DISTRIBUTION", "VERSION", "CAPABILITIES")]
    table += [
        (
            row["name"],
            row["kind"],
            row["distribution"] or "-",
            row["version"] or "-",
            _capabilities_text(row["capabilities"]) if row["capabilities"] is not None else "-",
        )
        for row in rows
    ]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _capabilities_text(values: dict[str, Any]) -> str:
    flags = [name for name, value in values.items() if value is True]
    if values.get("languages"):
        flags.append(f"languages={'/'.join(values['languages'])}")
    return ",".join(flags) or "-"


def _voices(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", None))
    tts = config.tts(profile=args.profile, provider=args.provider, **dict(args.options))

    async def listed() -> list[Voice]:
        async with tts:
            return await tts.voices()

    voices = asyncio.run(listed())
    if args.json:
        print(json.dumps([attrs.asdict(voice) for voice in voices], indent=2))
        return 0
    table = [("ID", "NAME", "LANGUAGE", "DESCRIPTION")]
    table += [(voice.id, voice.name, voice.language or "-", voice.description or "-") for voice in voices]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        print("  ".join(cells).rstrip())
    return 0


# --- compare ----------------------------------------------------------------------------------------------------


def _compare(args: argparse.Namespace) -> int:
    if args.source is None and args.tts is None:
        raise ConfigError("give recordings to compare STT on (DIR_OR_MANIFEST), texts for TTS (--tts), or both")
    if args.judge_stt and not args.tts:
        raise ConfigError("--judge-stt goes with --tts")
    if not args.targets:
        raise ConfigError("name what to compare with --profile NAME and/or --provider NAME (at least one)")
    config = load_config(getattr(args, "config", None))
    names = _compared_names(args.targets, config)
    if args.baseline is not None and args.baseline not in names:
        raise ConfigError(f"--baseline {args.baseline} is not one of the profiles compared", allowed=names)
    common = {
        "config": config,
        "mode": args.mode,
        "concurrency": args.concurrency,
        "out_dir": args.out,
        "resume": not args.fresh,
        "normalizer": args.normalizer,
        "baseline": args.baseline,
    }
    status = StatusLine(sys.stderr)
    comparisons: list[Comparison] = []
    try:
        if args.source is not None:
            stt_run = compare_stt(args.source, names, fast=args.fast, progress=_progress(status, "stt"), **common)
            comparisons.append(asyncio.run(stt_run))
        if args.tts is not None:
            tts_run = compare_tts(args.tts, names, judge=args.judge_stt, progress=_progress(status, "tts"), **common)
            comparisons.append(asyncio.run(tts_run))
    finally:
        status.clear()
        written = write_reports(comparisons, args.out) if comparisons else []
    texts = [text for each in comparisons for text in (format_table(each), format_differences(each)) if text]
    print("\n\n".join(texts))
    runs_files = [each.runs_file for each in comparisons if each.runs_file is not None]
    print(f"\nresults: {', '.join(str(path) for path in [*runs_files, *written])}")
    hopeless = [each.kind.upper() for each in comparisons if not any(run.ok for run in each.runs)]
    if hopeless:
        raise SpeechBridgeError(f"every {' and '.join(hopeless)} run failed: see the failures in {written[-1]}")
    return 0


def _compared_names(targets: Sequence[tuple[str, str]], config: Config) -> list[str]:
    """The names of ``--profile`` / ``--provider`` in order, each checked to be what it was given as."""
    registry = config.registry if config.registry is not None else plugins.get_registry()
    for kind, name in targets:
        if kind == "profile" and name not in config.profiles:
            raise ConfigError(f"unknown profile {name!r}, given as --profile", allowed=config.profile_names)
        if kind == "provider" and name in config.profiles:
            raise ConfigError(f"{name!r} names a profile too: compare it with --profile {name}")
        if kind == "provider" and not any(name in registry.names(each) for each in KINDS):
            known = sorted(set(registry.names("stt")) | set(registry.names("tts")))
            raise ConfigError(f"unknown provider {name!r}, given as --provider", allowed=known)
    return list(dict.fromkeys(name for _, name in targets))


def _progress(status: StatusLine, kind: str) -> Callable[[Progress], None]:
    """Show ``kind``'s runs as a bar on the status line, with the counts and the run that just finished."""

    def show(progress: Progress) -> None:
        filled = round(BAR_WIDTH * progress.done / progress.total) if progress.total else BAR_WIDTH
        text = f"{kind} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress.done}/{progress.total} runs"
        counts = ((progress.skipped, "resumed"), (progress.failed, "failed"))
        notes = [f"{count} {what}" for count, what in counts if count]
        text += f" ({', '.join(notes)})" if notes else ""
        if progress.run is not None:
            text += f"  {progress.run.item} / {progress.run.profile} / {progress.run.mode}"
        status.show(text)

    return show


# --- serve ------------------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    chosen = {args.backend, args.stt_backend, args.tts_backend}
    registry = scripted_registry() if SCRIPTED in chosen else plugins.get_registry()
    factory = registry.front(args.front)
    api_keys = _api_keys(args.api_key_env, args.allow_any_key, args.host)
    config = load_config(getattr(args, "config", None), registry=registry)
    if args.backend is not None and not any(args.backend in registry.names(kind) for kind in KINDS):
        known = sorted(set(registry.names("stt")) | set(registry.names("tts")))
        raise ConfigError(f"unknown provider {args.backend!r}, given as --backend", allowed=known)
    stt = None if _lacks(registry, "stt", args) else config.stt(args.profile, args.stt_backend or args.backend)
    tts = None if _lacks(registry, "tts", args) else config.tts(args.profile, args.tts_backend or args.backend)
    app = factory(stt, tts, api_keys=api_keys)
    keys = f"clients must send the key in {args.api_key_env}" if api_keys is not None else "any API key accepted"
    backends = f"stt: {stt.name if stt else 'none'}, tts: {tts.name if tts else 'none'}"

    def listening(url: str) -> None:
        print(f"{PROG}: serving the {args.front} API on {url} ({backends}; {keys})", file=sys.stderr, flush=True)

    async def run() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for provider in (stt, tts):
                if provider is not None:
                    await stack.enter_async_context(provider)
            await serving.serve(app, host=args.host, port=args.port, on_listening=listening)

    asyncio.run(run())
    return 0


def _lacks(registry: ProviderRegistry, kind: str, args: argparse.Namespace) -> bool:
    """True when ``--backend`` names a provider without a ``kind`` ("stt" or "tts") and no other is given for it."""
    own = getattr(args, f"{kind}_backend")
    return own is None and args.backend is not None and args.backend not in registry.names(kind)


def _api_keys(variable: str | None, allow_any: bool, host: str) -> tuple[str, ...] | None:
    """The keys clients must present (None: any key); listening beyond this machine needs an explicit choice."""
    if variable is not None:
        value = os.environ.get(variable, "").strip()
        if not value:
            raise ConfigError(f"{variable} is not set: it must hold the API key clients send (--api-key-env)")
        return (value,)
    if not allow_any and not _is_loopback(host):
        raise ConfigError(
            f"--host {host} lets other machines connect: require a key with --api-key-env NAME, or --allow-any-key"
        )
    return None


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _migrate(args: argparse.Namespace) -> int:
    """The config for ``args.file``'s options on stdout, what did not map on stderr; a bad file exits with 1."""
    migration_of = plugins.get_registry().migration(args.vendor)
    try:
        migration = migration_of(read_options(args.file))
    except ConfigError as exc:
        return _report(exc, 1, getattr(args, "debug", False))
    if args.json:
        print(json.dumps(migration.to_json(), indent=2))
        return 0
    print(migration.to_toml(), end="")
    for each in migration.unmapped:
        print(f"not migrated: {each.field} = {json.dumps(each.value)}: {each.reason}", file=sys.stderr)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"problem: {exc}")
        return 1
    print(f"config: {config.path or 'no file (defaults and environment)'}")
    for kind in KINDS:
        try:
            selection = config.select(kind)
        except ConfigError:
            continue
        options = ", ".join(f"{key}={value!r}" for key, value in selection.options.items())
        print(f"{kind}: {selection.provider}" + (f" ({options})" if options else ""))
    if config.profiles:
        print(f"profiles: {', '.join(config.profile_names)}")
    problems = config.check()
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
