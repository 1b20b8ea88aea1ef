"""The speechbridge command, run in-process; a few end-to-end runs use the real local backend."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jiwer
import pytest

from speechbridge import cli, plugins
from speechbridge.errors import ProviderError
from speechbridge.plugins import ProviderRegistry

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
