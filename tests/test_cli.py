"""The speechbridge command, run in-process; a few end-to-end runs use the real local backend."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import jiwer
import pytest
import websockets

from speechbridge import cli, plugins, serving
from speechbridge.audio import PCMAudio, encode
from speechbridge.errors import ConfigError, ProviderError, RateLimitError
from speechbridge.migrate import Migration, Unmapped
from speechbridge.plugins import ProviderRegistry
from speechbridge.testing import ScriptedSTT, ScriptedTTS, make_speech_sample

CODE = ["--provider", "code"]


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert err.startswith("speechbridge: error: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# --- transcribe -------------------------------------------------------------------------------------------------


def test_transcribe_prints_the_text(installed, make_wav: Callable[..., Path], capsys):
    assert run(capsys, "transcribe", make_wav("hello world"), *CODE) == (0, "hello world\n", "")


def test_transcribe_json_has_words_and_timings(installed, make_wav: Callable[..., Path], capsys):
    code, out, err = run(capsys, "transcribe", make_wav("hello world"), "--json", *CODE)
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["text"] == "hello world"
    assert [word["text"] for word in result["words"]] == ["hello", "world"]
    assert result["words"][1]["start_s"] == pytest.approx(0.12)
    assert result["end_s"] == pytest.approx(0.22)


def test_transcribe_uses_the_config_and_its_profiles(installed, tmp_path: Path, make_wav, capsys):
    config = tmp_path / "alt.toml"
    config.write_text('[stt]\nprovider = "code"\n[profiles.quiet]\nstt = { lowercase = true }\n')
    wav = make_wav("Hello")
    assert run(capsys, "--config", config, "transcribe", wav)[:2] == (0, "Hello\n")
    assert run(capsys, "transcribe", wav, "--config", config, "--profile", "quiet")[:2] == (0, "hello\n")
    assert run(capsys, "transcribe", wav, "--config", config, "-O", "lowercase=true")[:2] == (0, "hello\n")


def test_transcribe_raw_input_with_format(installed, tmp_path: Path, capsys):
    assert cli.main(["speak", "raw", "-o", str(tmp_path / "a.pcm"), "--format", "pcm_16000", *CODE]) == 0
    assert run(capsys, "transcribe", tmp_path / "a.pcm", "--format", "pcm_16000", *CODE) == (0, "raw\n", "")
    code, _, err = run(capsys, "transcribe", tmp_path / "a.pcm", *CODE)
    assert code == 2
    assert_one_line_error(err, "raw audio with no header", "e.g. pcm_16000")


def test_stream_prints_finals_to_stdout(installed, make_wav: Callable[..., Path], capsys):
    assert run(capsys, "transcribe", make_wav("hello world"), "--stream", "--fast", *CODE) == (0, "hello world\n", "")


def test_stream_json_prints_one_object_per_final(installed, make_wav: Callable[..., Path], capsys):
    code, out, _ = run(capsys, "transcribe", make_wav("hi there"), "--stream", "--fast", "--json", *CODE)
    assert code == 0
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["hi there"]


def test_stream_paces_audio_in_real_time(installed, make_wav: Callable[..., Path], capsys):
    wav = make_wav("a pace test")  # 0.22 s of audio
    started = time.monotonic()
    assert run(capsys, "transcribe", wav, "--stream", *CODE)[:2] == (0, "a pace test\n")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert run(capsys, "transcribe", wav, "--stream", "--speed", "4", *CODE)[:2] == (0, "a pace test\n")
    assert 0.05 <= time.monotonic() - started < 0.2


def test_stream_shows_interims_and_progress_on_a_terminal(
    installed, make_wav: Callable[..., Path], capsys, monkeypatch: pytest.MonkeyPatch
):
    terminal = TTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    wav = make_wav("one two three four")
    assert cli.main(["transcribe", str(wav), "--stream", "--fast", *CODE]) == 0
    assert capsys.readouterr().out == "one two three four\n"
    shown = terminal.getvalue()
    assert "one two" in shown  # an interim transcript, before the final
    assert "] 0.1/0.4 s" in shown
    assert "[########################] 0.4/0.4 s" in shown
    assert shown.endswith("\r\x1b[K")  # the status line is cleared at the end


def test_long_files_show_a_status_line_on_a_terminal(
    installed: ProviderRegistry, make_wav, capsys, monkeypatch: pytest.MonkeyPatch
):
    stt_class = installed.stt("code")
    recognise = stt_class._transcribe

    async def slowly(*args: object) -> object:
        await asyncio.sleep(0.3)
        return await recognise(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(stt_class, "_transcribe", slowly)
    monkeypatch.setattr(cli, "LONG_FILE_S", 0.1)
    terminal = TTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["transcribe", str(make_wav("slow words")), *CODE]) == 0
    assert capsys.readouterr().out == "slow words\n"
    assert re.search(r"\rtranscribing 0\.2 s of audio \.\.\. \d\.\d s\x1b\[K", terminal.getvalue())
    assert terminal.getvalue().endswith("\r\x1b[K")


def test_stream_without_a_terminal_writes_nothing_to_stderr(installed, make_wav, capsys):
    assert run(capsys, "transcribe", make_wav("quiet"), "--stream", "--fast", *CODE)[2] == ""


def test_speed_needs_stream_and_a_positive_number(installed, make_wav: Callable[..., Path], capsys):
    wav = make_wav("x")
    code, _, err = run(capsys, "transcribe", wav, "--speed", "2", *CODE)
    assert code == 2
    assert_one_line_error(err, "--speed and --fast go with --stream")
    code, _, err = run(capsys, "transcribe", wav, "--stream", "--speed", "0", *CODE)
    assert code == 2
    assert_one_line_error(err, "expected a number above 0, got '0'", "see 'speechbridge transcribe --help'")
    code, _, err = run(capsys, "transcribe", wav, "--stream", "--speed", "2", "--fast", *CODE)
    assert code == 2
    assert_one_line_error(err, "not allowed with argument")


# --- speak ------------------------------------------------------------------------------------------------------


def test_speak_writes_a_file_that_transcribes_back(installed, tmp_path: Path, capsys):
    out = tmp_path / "out.wav"
    assert run(capsys, "speak", "hello there", "-o", out, "--voice", "shout", *CODE) == (0, "", "")
    assert out.read_bytes()[:4] == b"RIFF"
    assert run(capsys, "transcribe", out, *CODE)[1] == "HELLO THERE\n"


def test_speak_reads_stdin(installed, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert run(capsys, "speak", "-", "-o", tmp_path / "in.flac", *CODE)[0] == 0
    assert run(capsys, "transcribe", tmp_path / "in.flac", *CODE)[1] == "from stdin\n"


def test_speak_to_stdout(installed, capsysbinary):
    assert cli.main(["speak", "piped", "-o", "-", "--format", "pcm_16000", *CODE]) == 0
    audio = capsysbinary.readouterr().out
    assert len(audio) == 2 * 160 * 2 * len("piped")
    assert cli.main(["speak", "piped", "-o", "-", *CODE]) == 0
    assert capsysbinary.readouterr().out[:4] == b"RIFF"


def test_speak_errors(installed, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    code, _, err = run(capsys, "speak", "hi", "-o", tmp_path / "out.ulaw", *CODE)
    assert code == 2
    assert_one_line_error(err, "out.ulaw is raw audio: give its format with a sample rate, e.g. mulaw_8000")
    code, _, err = run(capsys, "speak", "hi", "-o", tmp_path / "out.wav", "--voice", "whisper", *CODE)
    assert code == 2
    assert_one_line_error(err, "voice='whisper' is not accepted (allowed: plain, shout)")
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    code, _, err = run(capsys, "speak", "-", "-o", tmp_path / "out.wav", *CODE)
    assert code == 2
    assert_one_line_error(err, "text to speak is empty")
    code, _, err = run(capsys, "speak", "hi", *CODE)
    assert code == 2
    assert_one_line_error(err, "the following arguments are required: -o/--output")


# --- providers and config check ---------------------------------------------------------------------------------


def test_providers_table(installed, capsys):
    code, out, _ = run(capsys, "providers")
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "CAPABILITIES"]
    assert [line[:4] for line in lines[1:]] == [
        ["code", "stt", "-", "-"],
        ["code", "tts", "-", "-"],
        ["keyed", "stt", "-", "-"],
    ]
    assert lines[1][4] == "batch,streaming,interim_results,word_timestamps,flush,languages=en/fr"
    assert lines[3][4] == "batch"


def test_providers_json(installed, capsys):
    code, out, _ = run(capsys, "providers", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(row["name"], row["kind"]) for row in rows] == [("code", "stt"), ("code", "tts"), ("keyed", "stt")]
    assert rows[1]["capabilities"]["word_timestamps"] is True
    assert rows[0]["capabilities"]["languages"] == ["en", "fr"]
    assert rows[0]["distribution"] is None


def test_config_check_ok(installed, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "speechbridge.toml").write_text(
        '[stt]\nprovider = "code"\nlanguage = "fr"\n[tts]\nprovider = "code"\n'
        '[profiles.k]\nstt = { provider = "keyed" }\n'
    )
    monkeypatch.setenv("KEYED_API_KEY", "sk-do-not-print")
    code, out, err = run(capsys, "config", "check")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "config: speechbridge.toml",
        "stt: code (language='fr')",
        "tts: code",
        "profiles: k",
        "ok",
    ]
    assert "sk-do-not-print" not in out


def test_config_check_reports_problems(installed, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "speechbridge.toml").write_text('[stt]\nprovider = "keyed"\n[tts]\nprovider = "acme"\n')
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    code, out, _ = run(capsys, "config", "check")
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert problems == [
        "problem: stt: keyed needs an API key: set KEYED_API_KEY",
        "problem: tts: unknown tts provider 'acme', set in [tts] of speechbridge.toml (allowed: code)",
    ]
    assert out.endswith("2 problems\n")


def test_config_check_reports_a_broken_file(installed, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "bad.toml").write_text("[stt\n")
    code, out, _ = run(capsys, "config", "check", "--config", tmp_path / "bad.toml")
    assert code == 1
    assert out.startswith("problem: ") and "bad.toml is not valid TOML" in out
    monkeypatch.setenv("SPEECHBRIDGE_STT", "nope")
    code, out, _ = run(capsys, "config", "check")
    assert code == 1
    assert "problem: stt: unknown stt provider 'nope', set in SPEECHBRIDGE_STT (allowed: code, keyed)" in out


# --- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["transcribe", "missing.wav", *CODE], ["cannot read 'missing.wav': No such file or directory"]),
        (["transcribe", "{corrupt}", *CODE], ["corrupt.wav: WAV audio is truncated"]),
        (["transcribe", "{wav}", "--provider", "nope"], ["unknown stt provider 'nope'", "(allowed: code, keyed)"]),
        (["transcribe", "{wav}", "-O", "languag=en", *CODE], ["unknown option 'languag'", "(allowed: language, "]),
        (["transcribe", "{wav}", "-O", "language=de", *CODE], ["language='de' is not accepted (allowed: en, fr)"]),
        (["transcribe", "{wav}", "-O", "novalue", *CODE], ["expected KEY=VALUE, got 'novalue'"]),
        (["transcribe", "{wav}", "-O", "provider=code"], ["use --provider, not -O provider=..."]),
        (["speak", "hi", "-o", "x.wav", "-O", "voice=shout"], ["use --voice, not -O voice=..."]),
        (["transcribe", "{wav}", "--profile", "nope", *CODE], ["unknown profile 'nope' (allowed: none)"]),
        (["transcribe", "{wav}", "--config", "nowhere.toml"], ["config file 'nowhere.toml' does not exist"]),
        (["transcribe", "{wav}", "--format", "pcm_7"], ["sample rate 7", "1000 to 384000"]),
        (["bogus"], ["argument COMMAND: invalid choice: 'bogus'"]),
        (["config"], ["the following arguments are required: ACTION"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(installed, make_wav, tmp_path: Path, capsys, argv, fragments):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 8)
    paths = {"wav": make_wav("x"), "corrupt": corrupt}
    code, out, err = run(capsys, *[arg.format(**paths) for arg in argv])
    assert (code, out) == (2, "")
    assert_one_line_error(err, *fragments)


def test_provider_failure_is_exit_1(installed: ProviderRegistry, make_wav, capsys, monkeypatch: pytest.MonkeyPatch):
    async def refuse(*args: object) -> None:
        raise ProviderError("service unavailable", provider="code", code=503)

    monkeypatch.setattr(installed.stt("code"), "_transcribe", refuse)
    code, _, err = run(capsys, "transcribe", make_wav("x"), *CODE)
    assert code == 1
    assert_one_line_error(err, "speechbridge: error: code: service unavailable [code 503]")
    code, _, err = run(capsys, "--debug", "transcribe", make_wav("x"), *CODE)
    assert code == 1
    assert err.startswith("Traceback")
    assert err.endswith("speechbridge: error: code: service unavailable [code 503]\n")


def test_unexpected_exceptions_are_one_line_too(installed, make_wav, capsys, monkeypatch: pytest.MonkeyPatch):
    async def crash(*args: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(installed.stt("code"), "_transcribe", crash)
    code, _, err = run(capsys, "transcribe", make_wav("x"), *CODE)
    assert code == 1
    assert_one_line_error(err, "unexpected ZeroDivisionError: division by zero (run with --debug for the traceback)")


def test_ctrl_c_exits_130(installed, make_wav, capsys, monkeypatch: pytest.MonkeyPatch):
    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    async def interrupt_later(*args: object) -> None:
        interrupt()

    monkeypatch.setattr(installed.stt("code"), "_transcribe", interrupt_later)
    assert run(capsys, "transcribe", make_wav("x"), *CODE) == (130, "", "")
    monkeypatch.setattr(cli.StatusLine, "show", interrupt)  # called once the first chunk is sent
    assert run(capsys, "transcribe", make_wav("x"), "--stream", *CODE) == (130, "", "")


def test_no_command_prints_help(capsys):
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert err.startswith("usage: speechbridge")


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("speechbridge ")


# --- end to end, with the real local backend --------------------------------------------------------------------

SENTENCE = "the quick brown fox jumps over the lazy dog"


REAL_ENV = ("SPEECHBRIDGE_CONFIG", "SPEECHBRIDGE_STT", "SPEECHBRIDGE_TTS", "SPEECHBRIDGE_DISABLE_PLUGINS")


@pytest.fixture
def real_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed backends, with no config file and no overrides."""
    for name in REAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(plugins, "_registry", None)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SENTENCE spoken by the local backend (3 s), made once for this module."""
    out = tmp_path_factory.mktemp("local") / "fox.wav"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(out.parent)
        for name in REAL_ENV:
            patch.delenv(name, raising=False)
        patch.setattr(plugins, "_registry", None)
        assert cli.main(["speak", SENTENCE, "-o", str(out)]) == 0
    return out


@pytest.fixture
def local_speech(real_registry: None, spoken: Path) -> Path:
    return spoken


def test_local_round_trip_with_no_config(local_speech: Path, capsys):
    capsys.readouterr()
    code, out, _ = run(capsys, "transcribe", local_speech)
    assert code == 0
    assert jiwer.wer(SENTENCE, out.strip()) <= 0.25


def test_local_stream_and_json(local_speech: Path, capsys):
    capsys.readouterr()
    code, out, _ = run(capsys, "transcribe", local_speech, "--stream", "--fast")
    assert code == 0
    assert jiwer.wer(SENTENCE, " ".join(out.split())) <= 0.25
    code, out, _ = run(capsys, "transcribe", local_speech, "--json")
    words = json.loads(out)["words"]
    assert len(words) >= 6
    assert all(0 <= word["start_s"] <= word["end_s"] <= 4 for word in words)


def test_local_backend_is_listed(real_registry: None, capsys):
    code, out, _ = run(capsys, "providers")
    assert code == 0
    rows = [line.split()[:3] for line in out.splitlines()]
    assert ["local", "stt", "speechbridge-local"] in rows
    assert ["local", "tts", "speechbridge-local"] in rows


def test_ctrl_c_in_a_real_process_exits_130_without_a_traceback(local_speech: Path):
    terminal, stderr = pty.openpty()  # a terminal on stderr shows the progress line once audio flows
    process = subprocess.Popen(
        [sys.executable, "-m", "speechbridge.cli", "transcribe", str(local_speech), "--stream"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    os.close(stderr)
    shown = b""
    deadline = time.monotonic() + 30
    while b"/3.0 s" not in shown and time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.1)[0]:
            shown += os.read(terminal, 4096)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    with contextlib.suppress(OSError):
        while chunk := os.read(terminal, 4096):
            shown += chunk
    os.close(terminal)
    assert b"/3.0 s" in shown
    assert process.returncode == 130
    assert b"Traceback" not in shown


# --- serve ------------------------------------------------------------------------------------------------------


class EchoFront:
    """A front whose app answers every HTTP request with the names of the providers behind it."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, object, dict[str, object]]] = []

    def __call__(self, stt: object, tts: object, /, **options: object) -> Callable[..., object]:
        self.calls.append((stt, tts, options))

        async def app(scope: dict[str, object], receive: Callable[..., object], send: Callable[..., object]) -> None:
            names = f"{getattr(stt, 'name', None)} {getattr(tts, 'name', None)}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
            await send({"type": "http.response.body", "body": names})  # type: ignore[operator]

        return app


@pytest.fixture
def echo(installed: ProviderRegistry) -> EchoFront:
    """The in-test registry with an ``echo`` front."""
    front = EchoFront()
    installed.add_front("echo", front)
    return front


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Record what `serve` would listen on instead of serving (the real serving runs in a subprocess below)."""
    calls: list[dict[str, object]] = []

    async def record(app: object, *, host: str, port: int, on_listening: Callable[[str], None]) -> None:
        calls.append({"app": app, "host": host, "port": port})
        on_listening(f"http://{host}:{port}")

    monkeypatch.setattr(serving, "serve", record)
    return calls


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["serve"], ["the following arguments are required: front"]),
        (["serve", "nope"], ["unknown front 'nope' (allowed: echo)"]),
        (
            ["serve", "echo", "--backend", "nope"],
            ["unknown provider 'nope', given as --backend (allowed: code, keyed)"],
        ),
        (["serve", "echo", "--stt-backend", "nope"], ["unknown stt provider 'nope'", "(allowed: code, keyed)"]),
        (
            ["serve", "echo", "--backend", "code", "--tts-backend", "keyed"],
            ["unknown tts provider 'keyed'", "(allowed: code)"],
        ),
        (["serve", "echo", "--backend", "code", "--profile", "nope"], ["unknown profile 'nope'"]),
        (["serve", "echo", "--port", "65536"], ["expected a port number from 0 to 65535, got '65536'"]),
        (["serve", "echo", "--port", "-1"], ["expected a port number from 0 to 65535, got '-1'"]),
        (["serve", "echo", "--backend", "code", "--host", "0.0.0.0"], ["--host 0.0.0.0 lets other machines connect"]),
        (["serve", "echo", "--backend", "code", "--api-key-env", "SB_UNSET_KEY"], ["SB_UNSET_KEY is not set"]),
        (["serve", "echo", "--api-key-env", "K", "--allow-any-key"], ["not allowed with argument --api-key-env"]),
    ],
)
def test_serve_bad_arguments_are_one_line_and_exit_2(echo: EchoFront, served, capsys, monkeypatch, argv, fragments):
    monkeypatch.delenv("SB_UNSET_KEY", raising=False)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert_one_line_error(err, *fragments)
    assert echo.calls == [] and served == []


def test_serve_makes_the_backends_through_the_config(echo: EchoFront, served, tmp_path: Path, capsys):
    (tmp_path / "speechbridge.toml").write_text(
        '[stt]\nprovider = "code"\nlanguage = "fr"\n[tts]\nprovider = "code"\n'
        '[profiles.loud]\ntts = { voice = "shout" }\n'
    )
    assert run(capsys, "serve", "echo", "--port", "0", "--profile", "loud")[:2] == (0, "")
    stt, tts, options = echo.calls[-1]
    assert (type(stt).__name__, stt.settings.language) == ("CodeSTT", "fr")  # type: ignore[attr-defined]
    assert (type(tts).__name__, tts.settings.voice) == ("CodeTTS", "shout")  # type: ignore[attr-defined]
    assert options == {"api_keys": None}
    assert {key: served[-1][key] for key in ("host", "port")} == {"host": "127.0.0.1", "port": 0}


@pytest.mark.parametrize(
    ("flags", "backends"),
    [
        (["--backend", "code"], ("CodeSTT", "CodeTTS", "stt: code, tts: code")),
        (["--backend", "keyed"], ("KeyedSTT", None, "stt: keyed, tts: none")),
        (["--backend", "keyed", "--tts-backend", "code"], ("KeyedSTT", "CodeTTS", "stt: keyed, tts: code")),
        (["--stt-backend", "code", "--tts-backend", "code"], ("CodeSTT", "CodeTTS", "stt: code, tts: code")),
    ],
)
def test_serve_backend_choice(echo: EchoFront, served, capsys, flags: list[str], backends: tuple[str | None, ...]):
    code, out, err = run(capsys, "serve", "echo", *flags)
    assert (code, out) == (0, "")
    stt, tts, _ = echo.calls[-1]
    assert (type(stt).__name__, type(tts).__name__ if tts is not None else None) == backends[:2]
    assert err == f"speechbridge: serving the echo API on http://127.0.0.1:8080 ({backends[2]}; any API key accepted)\n"


def test_serve_requires_the_key_from_the_environment_and_never_prints_it(
    echo: EchoFront, served, capsys, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SB_FRONT_KEY", "sk-front-secret")
    code, _, err = run(
        capsys, "serve", "echo", "--backend", "code", "--host", "0.0.0.0", "--api-key-env", "SB_FRONT_KEY"
    )
    assert code == 0
    assert echo.calls[-1][2] == {"api_keys": ("sk-front-secret",)}
    assert "clients must send the key in SB_FRONT_KEY" in err and "sk-front-secret" not in err
    assert run(capsys, "serve", "echo", "--backend", "code", "--host", "0.0.0.0", "--allow-any-key")[0] == 0
    assert echo.calls[-1][2] == {"api_keys": None}


def test_serve_closes_the_providers(echo: EchoFront, served, installed: ProviderRegistry, capsys):
    before = installed.stt("code").closed  # type: ignore[attr-defined]
    assert run(capsys, "serve", "echo", "--backend", "code")[0] == 0
    assert installed.stt("code").closed == before + 1  # type: ignore[attr-defined]


def test_serve_on_a_busy_port_is_exit_1(echo: EchoFront, capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "echo", "--backend", "code", "--port", str(port))
    assert code == 1
    assert_one_line_error(err, f"cannot listen on 127.0.0.1:{port}: ")


# --- voices -----------------------------------------------------------------------------------------------------


def test_voices_table(installed, capsys):
    code, out, err = run(capsys, "voices", *CODE)
    assert (code, err) == (0, "")
    assert [line.split() for line in out.splitlines()] == [
        ["ID", "NAME", "LANGUAGE", "DESCRIPTION"],
        ["plain", "Plain", "-", "-"],
        ["shout", "Shout", "-", "-"],
    ]


def test_voices_json_of_the_configured_provider(installed, tmp_path: Path, capsys):
    (tmp_path / "speechbridge.toml").write_text('[tts]\nprovider = "code"\n')
    code, out, err = run(capsys, "voices", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"id": "plain", "name": "Plain", "language": None, "description": None},
        {"id": "shout", "name": "Shout", "language": None, "description": None},
    ]


def test_voices_errors(installed, capsys, monkeypatch: pytest.MonkeyPatch):
    code, _, err = run(capsys, "voices", "--provider", "nope")
    assert code == 2
    assert_one_line_error(err, "unknown", "nope", "code")
    code, _, err = run(capsys, "voices", *CODE, "-O", "pitch=3")
    assert code == 2
    assert_one_line_error(err, "unknown option 'pitch'")

    async def refuse(self: object) -> list[object]:
        raise ProviderError("voice list unavailable", provider="code", code=503)

    monkeypatch.setattr(installed.tts("code"), "voices", refuse)
    code, out, err = run(capsys, "voices", *CODE)
    assert (code, out) == (1, "")
    assert_one_line_error(err, "voice list unavailable")


def test_local_voices(real_registry: None, capsys):
    code, out, _ = run(capsys, "voices", "--provider", "local", "--json")
    assert code == 0
    voices = json.loads(out)
    assert voices and all(voice["id"] and voice["name"] for voice in voices)
    assert any(voice["language"] for voice in voices)


# --- serve, in a real process -----------------------------------------------------------------------------------

SERVE_KEY = "sk-serve-do-not-log"


def _wait_for_banner(process: subprocess.Popen[str], timeout_s: float = 30.0) -> str:
    """The URL `serve` announces on stderr once it listens."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline and process.poll() is None:
        if select.select([process.stderr], [], [], 0.1)[0]:
            line = process.stderr.readline()
            seen += line
            found = re.search(r"serving the gradium API on (http://\S+) ", line)
            if found:
                return found.group(1)
    raise AssertionError(f"serve did not start: {seen!r}")


async def _speak_over_websocket(url: str, text: str) -> tuple[list[str], bytes]:
    """Gradium's TTS WebSocket with a browser token: the words it timed and the audio (16 kHz PCM)."""
    async with httpx.AsyncClient(base_url=url) as client:
        token = (await client.get("/api/api-keys/token", headers={"x-api-key": SERVE_KEY})).json()["token"]
    async with websockets.connect(f"ws{url.removeprefix('http')}/api/speech/tts?token={token}") as socket_:
        await socket_.send(json.dumps({"type": "setup", "voice_id": "sine", "output_format": "pcm_16000"}))
        assert json.loads(await socket_.recv())["type"] == "ready"
        await socket_.send(json.dumps({"type": "text", "text": text}))
        await socket_.send(json.dumps({"type": "end_of_stream"}))
        messages = [json.loads(frame) async for frame in socket_]
        assert socket_.close_code == 1000
    assert messages[-1]["type"] == "end_of_stream"
    words = [message["text"] for message in messages if message["type"] == "text"]
    audio = b"".join(base64.b64decode(message["audio"]) for message in messages if message["type"] == "audio")
    return words, audio


def test_serve_runs_the_gradium_front_until_ctrl_c(tmp_path: Path):
    pytest.importorskip("speechbridge_gradium")
    pytest.importorskip("uvicorn")
    sample = asyncio.run(make_speech_sample(ScriptedTTS(sample_rate=16000), "hello world"))
    ms_per_word = ScriptedSTT.for_audio(sample.audio, sample.words).settings.ms_per_word
    (tmp_path / "speechbridge.toml").write_text(
        f'[providers.scripted]\nscript = "hello world"\nms_per_word = {ms_per_word}\n'
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("SPEECHBRIDGE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "speechbridge.cli", "serve", "gradium", "--backend", "scripted", "--port", "0",
         "--api-key-env", "SB_SERVE_KEY"],
        cwd=tmp_path, env={**env, "SB_SERVE_KEY": SERVE_KEY}, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = _wait_for_banner(process)
        words, audio = asyncio.run(_speak_over_websocket(url, "hello world"))
        assert words == ["hello", "world"]
        wav = encode(PCMAudio(audio, 16000), "wav")
        heard = httpx.post(f"{url}/api/post/speech/asr", content=wav, headers={"x-api-key": SERVE_KEY}, timeout=30)
        assert heard.status_code == 200
        lines = [json.loads(line) for line in heard.text.splitlines()]
        assert [line["text"] for line in lines if line["type"] == "text"] == ["hello", "world"]
        refused = httpx.post(f"{url}/api/post/speech/asr", content=wav, headers={"x-api-key": "wrong"}, timeout=30)
        assert (refused.status_code, refused.text) == (500, "error from server 1008: API key is revoked or expired")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert out == ""
    assert "Traceback" not in err
    assert SERVE_KEY not in err
    assert "/api/speech/tts?token=*** " in err.replace('"', " ")  # uvicorn's log line, the token masked
    assert "gdt_" not in err


# --- compare ----------------------------------------------------------------------------------------------------

COMPARE_CONFIG = """
[profiles.plain]
stt = { provider = "code" }
tts = { provider = "code", sample_rate = 24000 }
[profiles.lower]
stt = { provider = "code", lowercase = true }
tts = { provider = "code", voice = "shout", sample_rate = 24000 }
[pricing.code]
stt_per_minute = 0.6
"""


@pytest.fixture
def dataset(installed, tmp_path: Path, make_wav: Callable[..., Path]) -> Path:
    """Two recordings in the code voice: one heard exactly, one whose reference differs in one word of four."""
    (tmp_path / "data").mkdir()
    for name, spoken, reference in (("a", "hello world", "Hello, world!"), ("b", "good morning", "good evening")):
        make_wav(spoken, f"data/{name}.wav")
        (tmp_path / "data" / f"{name}.txt").write_text(reference)
    (tmp_path / "speechbridge.toml").write_text(COMPARE_CONFIG)
    return tmp_path / "data"


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_compare_prints_the_table_and_writes_every_result(dataset: Path, capsys):
    code, out, err = run(capsys, "compare", dataset, "--profile", "plain", "--profile", "lower", "--mode", "both")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "STT: 2 items"
    assert lines[1].split()[:7] == ["PROFILE", "MODE", "PROVIDER", "OK/RUNS", "RETRIES", "WER", "S/D/I"]
    rows = [line.split() for line in lines[2:6]]
    assert [row[:7] for row in rows] == [
        [profile, mode, "code", "2/2", "0", "25.0%", "1/0/0"]
        for profile in ("plain", "lower")
        for mode in ("stream", "batch")
    ]
    assert all(row[-2:] == ["0.5", f"${0.6 * 0.46 / 60:.4f}"] for row in rows)  # 0.22 s + 0.24 s at $0.60 a minute
    assert "Differences against plain (other - plain, paired by item" in out
    assert "too few pairs (under 5)" in out
    results = Path("compare-results")
    assert out.rstrip().endswith(
        f"results: {results / 'stt_runs.jsonl'}, {results / 'stt_runs.csv'}, {results / 'summary.json'}, "
        f"{results / 'report.html'}"
    )
    runs = jsonl(results / "stt_runs.jsonl")
    assert sorted((run["item"], run["profile"], run["mode"]) for run in runs) == sorted(
        (item, profile, mode) for item in "ab" for profile in ("plain", "lower") for mode in ("stream", "batch")
    )
    assert {run["hypothesis"] for run in runs} == {"hello world", "good morning"}
    with (results / "stt_runs.csv").open(newline="") as file:
        assert sorted(row["wer"] for row in csv.DictReader(file)) == ["0.0"] * 4 + ["0.5"] * 4
    summary = json.loads((results / "summary.json").read_text())
    assert [(row["profile"], row["mode"], row["wer"]) for row in summary["stt"]["summaries"]] == [
        ("plain", "stream", 0.25), ("plain", "batch", 0.25), ("lower", "stream", 0.25), ("lower", "batch", 0.25)
    ]  # fmt: skip
    html = (results / "report.html").read_text()
    assert "<h2>Speech to text</h2>" in html and "<script" not in html
    assert "good <del>evening</del> <ins>morning</ins>" in html


def test_compare_resumes_and_starts_afresh(dataset: Path, capsys):
    argv = ["compare", dataset, "--provider", "code", "--fast"]
    assert run(capsys, *argv)[0] == 0
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.startswith("STT: 2 items; 2 resumed from an earlier run\n")
    assert len(jsonl(Path("compare-results/stt_runs.jsonl"))) == 2
    code, out, _ = run(capsys, *argv, "--fresh", "--out", "compare-results")
    assert code == 0 and "resumed" not in out
    assert len(jsonl(Path("compare-results/stt_runs.jsonl"))) == 2


def test_compare_shows_progress_on_a_terminal(dataset: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    terminal = TTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["compare", str(dataset), "--profile", "plain", "--profile", "lower", "--fast"]) == 0
    shown = terminal.getvalue()
    assert "stt [........................] 0/4 runs" in shown
    assert "stt [########################] 4/4 runs" in shown
    assert re.search(r"\] [1-4]/4 runs  [ab] / (plain|lower) / stream", shown)
    assert shown.endswith("\r\x1b[K")


def test_compare_counts_retries_and_failures(dataset: Path, installed: ProviderRegistry, capsys, monkeypatch):
    calls: list[int] = []
    original = installed.stt("code")._transcribe

    async def flaky(self: object, audio: bytes, *args: object) -> object:
        calls.append(len(audio))
        if len(calls) == 1:
            raise RateLimitError("slow down", provider="code", retry_after=0.0)
        if b"\x67\x00" in audio:  # the "g" of "good morning" always fails
            raise ProviderError("cannot hear that", provider="code", code=422)
        return await original(self, audio, *args)

    monkeypatch.setattr(installed.stt("code"), "_transcribe", flaky)
    code, out, err = run(capsys, "compare", dataset, "--provider", "code", "--mode", "batch", "--concurrency", "1")
    assert (code, err) == (0, "")
    assert out.splitlines()[2].split()[:7] == ["code", "batch", "code", "1/2", "1", "0.0%", "0/0/0"]
    failed = [run for run in jsonl(Path("compare-results/stt_runs.jsonl")) if run["error"]]
    assert [(run["item"], run["error_type"], run["error"]) for run in failed] == [
        ("b", "ProviderError", "code: cannot hear that [code 422]")
    ]
    assert "ProviderError: code: cannot hear that [code 422]" in Path("compare-results/report.html").read_text()


def test_compare_where_every_run_fails_is_exit_1(dataset: Path, capsys):
    code, out, err = run(capsys, "compare", dataset, "--provider", "keyed", "--mode", "batch")
    assert code == 1
    assert out.splitlines()[2].split()[:4] == ["keyed", "batch", "keyed", "0/2"]
    assert_one_line_error(err, "every STT run failed: see the failures in compare-results/report.html")


def test_compare_tts_with_a_judge(dataset: Path, tmp_path: Path, capsys):
    (tmp_path / "texts.txt").write_text("Hello there.\nSee you at 5.\n")
    argv = ["compare", "--tts", "texts.txt", "--profile", "plain", "--profile", "lower", "--judge-stt", "plain"]
    code, out, err = run(capsys, *argv, "--out", "tts-results")
    assert (code, err) == (0, "")
    assert out.startswith("TTS (WER of the judge's round trip): 2 items\n")
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert [row[:7] for row in rows] == [
        ["plain", "stream", "code", "2/2", "0", "0.0%", "0/0/0"],
        ["lower", "stream", "code", "2/2", "0", "0.0%", "0/0/0"],
    ]
    runs = jsonl(Path("tts-results/tts_runs.jsonl"))
    assert {(run["judge"], run["hypothesis"]) for run in runs} >= {("plain", "SEE YOU AT 5.")}
    assert "<h2>Text to speech</h2>" in Path("tts-results/report.html").read_text()


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["compare", "{data}"], ["name what to compare with --profile NAME and/or --provider NAME"]),
        (["compare", "--provider", "code"], ["give recordings to compare STT on (DIR_OR_MANIFEST), texts for TTS"]),
        (
            ["compare", "{data}", "--profile", "nope"],
            ["unknown profile 'nope', given as --profile (allowed: lower, plain)"],
        ),
        (
            ["compare", "{data}", "--provider", "nope"],
            ["unknown provider 'nope', given as --provider (allowed: code, keyed)"],
        ),
        (
            ["compare", "{data}", "--provider", "plain"],
            ["'plain' names a profile too: compare it with --profile plain"],
        ),
        (["compare", "{data}", "--provider", "code", "--judge-stt", "code"], ["--judge-stt goes with --tts"]),
        (
            ["compare", "{data}", "--provider", "code", "--baseline", "x"],
            ["--baseline x is not one of the profiles compared (allowed: code)"],
        ),
        (
            ["compare", "{data}", "--provider", "code", "--concurrency", "0"],
            ["expected a whole number above 0, got '0'"],
        ),
        (["compare", "{data}", "--provider", "code", "--mode", "live"], ["invalid choice: 'live'"]),
        (["compare", "missing", "--provider", "code"], ["missing does not exist (allowed: a folder of audio files"]),
        (["compare", "--tts", "missing.txt", "--provider", "code"], ["missing.txt"]),
    ],
)
def test_compare_bad_input_is_one_line_and_exit_2(dataset: Path, capsys, argv: list[str], fragments: list[str]):
    code, out, err = run(capsys, *[arg.format(data=dataset) for arg in argv])
    assert (code, out) == (2, "")
    assert_one_line_error(err, *fragments)


def test_compare_two_local_profiles_offline(local_speech: Path, tmp_path: Path, capsys):
    data = tmp_path / "local-data"
    data.mkdir()
    (data / "fox.wav").write_bytes(local_speech.read_bytes())
    (data / "fox.txt").write_text(SENTENCE)
    config = tmp_path / "compare.toml"
    config.write_text('[profiles.quick]\nstt = { provider = "local", silence_ms = 300 }\n')
    code, out, err = run(
        capsys, "compare", data, "--provider", "local", "--profile", "quick", "--fast", "--config", config
    )
    assert (code, err) == (0, "")
    summaries = json.loads(Path("compare-results/summary.json").read_text())["stt"]["summaries"]
    assert [(row["profile"], row["runs"], row["failures"]) for row in summaries] == [("local", 1, 0), ("quick", 1, 0)]
    assert all(row["wer"] <= 0.25 for row in summaries)
    assert all(row["metrics"]["first_transcript_s"]["count"] == 1 for row in summaries)
    assert "quick" in out and "local" in out


def test_compare_ctrl_c_exits_130_and_keeps_the_finished_runs(dataset: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    shown: list[str] = []

    def interrupt_after_two_runs(self: cli.StatusLine, text: str) -> None:
        shown.append(text)
        if " 2/4 runs" in text and len(shown) <= 3:  # only in the first command
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C does: asyncio cancels the comparison

    monkeypatch.setattr(cli.StatusLine, "show", interrupt_after_two_runs)
    argv = ["compare", dataset, "--profile", "plain", "--profile", "lower", "--fast", "--concurrency", "1"]
    assert run(capsys, *argv) == (130, "", "")
    assert len(jsonl(Path("compare-results/stt_runs.jsonl"))) == 2
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out.startswith("STT: 2 items; 2 resumed from an earlier run\n")


# --- migrate ----------------------------------------------------------------------------------------------------


def _migrate_acme(options: Mapping[str, object]) -> Migration:
    """A migration of "acme" options: ``lang`` becomes the STT language; anything else does not map."""
    if options.get("lang") == "xx":
        raise ConfigError("lang 'xx' is not a language")
    unmapped = tuple(Unmapped(key, value, f"{key} is acme-only") for key, value in options.items() if key != "lang")
    config = {"stt": {"provider": "code", "language": options.get("lang", "en")}}
    return Migration("acme", config, {"stt": "pcm_8000"}, unmapped)


@pytest.fixture
def migrations(installed: ProviderRegistry) -> ProviderRegistry:
    installed.add_migration("acme", _migrate_acme)
    return installed


def test_migrate_prints_the_config_and_lists_what_did_not_map(migrations: ProviderRegistry, capsys, tmp_path: Path):
    (tmp_path / "options.json").write_text('{"lang": "fr", "diarize": true, "tag": ["a", "b"]}')
    code, out, err = run(capsys, "migrate", "acme", tmp_path / "options.json")
    assert code == 0
    assert tomllib.loads(out) == {"stt": {"provider": "code", "language": "fr"}}
    assert "# declare the stt audio: pcm_8000" in out
    assert err.splitlines() == [
        "not migrated: diarize = true: diarize is acme-only",
        'not migrated: tag = ["a", "b"]: tag is acme-only',
    ]
    (tmp_path / "speechbridge.toml").write_text(out)
    lines = run(capsys, "config", "check")[1].splitlines()
    assert "stt: code (language='fr')" in lines
    assert not [line for line in lines if line.startswith("problem: stt")]


def test_migrate_json_has_config_and_unmapped(migrations: ProviderRegistry, capsys, tmp_path: Path):
    (tmp_path / "options.txt").write_text("lang=de&echo=1")
    code, out, err = run(capsys, "migrate", "acme", tmp_path / "options.txt", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["config"] == {"stt": {"provider": "code", "language": "de"}}
    assert data["audio"] == {"stt": "pcm_8000"}
    assert data["unmapped"] == [{"field": "echo", "value": 1, "reason": "echo is acme-only"}]


def test_migrate_errors(migrations: ProviderRegistry, capsys, tmp_path: Path):
    code, out, err = run(capsys, "migrate", "acne", tmp_path / "x.json")
    assert (code, out) == (2, "")
    assert_one_line_error(err, "no migration from 'acne' (allowed: acme)")
    code, out, err = run(capsys, "migrate", "acme", tmp_path / "missing.json")
    assert (code, out) == (1, "")
    assert_one_line_error(err, "cannot read", "missing.json")
    (tmp_path / "bad.json").write_text("{")
    code, _, err = run(capsys, "migrate", "acme", tmp_path / "bad.json")
    assert code == 1
    assert_one_line_error(err, "bad.json is not valid JSON")
    (tmp_path / "xx.json").write_text('{"lang": "xx"}')
    code, _, err = run(capsys, "migrate", "acme", tmp_path / "xx.json")
    assert code == 1
    assert_one_line_error(err, "lang 'xx' is not a language")
    code, _, err = run(capsys, "migrate", "acme")
    assert code == 2
    assert "the following arguments are required: file" in err
