"""The blocking facade: transcribe_file and speak."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from speechbridge.audio import AudioFormat, decode
from speechbridge.config import Config
from speechbridge.errors import AudioFormatError, ConfigError
from speechbridge.plugins import ProviderRegistry
from speechbridge.sync import input_format, output_format, speak, transcribe_file


@pytest.fixture
def config(installed: ProviderRegistry) -> Config:
    return Config.from_dict({"stt": {"provider": "code"}, "tts": {"provider": "code"}}, registry=installed)


def test_transcribe_file(config: Config, make_wav: Callable[..., Path]):
    transcript = transcribe_file(make_wav("hello world"), config=config)
    assert transcript.text == "hello world"
    assert transcript.is_final
    assert [word.text for word in transcript.words] == ["hello", "world"]


def test_transcribe_file_passes_options_and_closes_the_provider(config: Config, make_wav: Callable[..., Path]):
    stt_class = config.stt().__class__
    closed = stt_class.closed
    assert transcribe_file(make_wav("Hello World"), config=config, lowercase=True).text == "hello world"
    assert stt_class.closed == closed + 1


def test_transcribe_file_reads_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: ProviderRegistry, make_wav: Callable[..., Path]
):
    (tmp_path / "speechbridge.toml").write_text('[stt]\nprovider = "code"\n[providers.code]\nlowercase = true\n')
    monkeypatch.chdir(tmp_path)
    assert transcribe_file(make_wav("ABC")).text == "abc"
    assert transcribe_file(make_wav("ABC"), config=tmp_path / "speechbridge.toml").text == "abc"


def test_unknown_provider_lists_the_allowed(config: Config, make_wav: Callable[..., Path]):
    with pytest.raises(
        ConfigError, match=r"unknown stt provider 'nope', given as an argument \(allowed: code, keyed\)"
    ):
        transcribe_file(make_wav("x"), config=config, provider="nope")


def test_missing_and_corrupt_files(config: Config, tmp_path: Path):
    with pytest.raises(AudioFormatError, match=r"cannot read .*missing\.wav"):
        transcribe_file(tmp_path / "missing.wav", config=config)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 8)
    with pytest.raises(AudioFormatError, match=r"corrupt\.wav: WAV audio is truncated"):
        transcribe_file(corrupt, config=config)


def test_speak_writes_the_file_in_the_format_of_its_extension(config: Config, tmp_path: Path):
    for name, encoding in [("out.wav", "wav"), ("out.flac", "flac")]:
        path = tmp_path / name
        synthesis = speak("hello there", path, config=config, voice="shout")
        assert synthesis.format == AudioFormat(encoding)
        assert path.read_bytes() == synthesis.audio
        assert transcribe_file(path, config=config).text == "HELLO THERE"
        assert [word.text for word in synthesis.words] == ["HELLO", "THERE"]


def test_speak_raw_files_need_a_rate(config: Config, tmp_path: Path):
    with pytest.raises(
        AudioFormatError, match=r"out\.ulaw is raw audio: give its format with a sample rate, e\.g\. mulaw_8000"
    ):
        speak("hi", tmp_path / "out.ulaw", config=config)
    with pytest.raises(AudioFormatError, match=r"out\.pcm is raw audio: .* e\.g\. pcm_16000"):
        speak("hi", tmp_path / "out.pcm", config=config)
    synthesis = speak("hi", tmp_path / "out.pcm", config=config, format="pcm_16000")
    assert (tmp_path / "out.pcm").read_bytes() == synthesis.audio
    assert transcribe_file(tmp_path / "out.pcm", config=config, format="pcm_16000").text == "hi"
    with pytest.raises(AudioFormatError, match=r"out\.pcm holds raw audio with no header: .* e\.g\. pcm_16000"):
        transcribe_file(tmp_path / "out.pcm", config=config)


def test_speak_ulaw_with_a_rate(config: Config, tmp_path: Path):
    path = tmp_path / "out.ulaw"
    synthesis = speak("hi", path, config=config, format="mulaw_8000")
    assert synthesis.format == AudioFormat("mulaw", 8000)
    assert len(path.read_bytes()) == len(decode(synthesis.audio, "mulaw_8000").data) // 2 > 0


def test_speak_format_must_match_the_extension(config: Config, tmp_path: Path):
    with pytest.raises(AudioFormatError, match=r"format pcm_16000 does not match the extension of .*out\.wav"):
        speak("hi", tmp_path / "out.wav", config=config, format="pcm_16000")
    with pytest.raises(AudioFormatError, match=r"cannot tell the audio format of .*out\.xyz.*\.wav, \.flac"):
        speak("hi", tmp_path / "out.xyz", config=config)
    speak("hi", tmp_path / "out.xyz", config=config, format="wav")
    assert (tmp_path / "out.xyz").read_bytes()[:4] == b"RIFF"


def test_speak_without_a_path_returns_the_audio(config: Config, tmp_path: Path):
    synthesis = speak("hi", config=config, speed=2.0)
    assert synthesis.format == AudioFormat("wav")
    assert synthesis.duration_s == pytest.approx(0.02)
    assert list(tmp_path.iterdir()) == []


def test_speak_into_a_missing_directory(config: Config, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"cannot write .*nowhere/out\.wav': its directory does not exist"):
        speak("hi", tmp_path / "nowhere" / "out.wav", config=config)


def test_speak_bad_option(config: Config, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"voice='whisper' is not accepted \(allowed: plain, shout\)"):
        speak("hi", tmp_path / "out.wav", config=config, voice="whisper")
    assert not (tmp_path / "out.wav").exists()


async def test_refuses_to_run_inside_an_event_loop(config: Config, make_wav: Callable[..., Path]):
    with pytest.raises(RuntimeError, match=r"cannot run inside a running event loop; use the async API"):
        transcribe_file(make_wav("x"), config=config)
    with pytest.raises(RuntimeError, match=r"speechbridge\.speak\(\) blocks"):
        speak("x", config=config)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.wav", "wav"), ("a.FLAC", "flac"), ("a.ogg", "ogg_opus"), ("a.opus", "ogg_opus"), ("a.mp3", "mp3")],
)
def test_output_format_from_the_extension(name: str, expected: str):
    assert output_format(name) == AudioFormat(expected)  # type: ignore[arg-type]
    assert input_format(name) is None


def test_input_format_of_raw_files():
    assert input_format("call.ulaw", "mulaw_8000") == AudioFormat("mulaw", 8000)
    with pytest.raises(AudioFormatError, match=r"e\.g\. alaw_8000"):
        input_format("call.alaw")
    with pytest.raises(AudioFormatError, match=r"format wav does not match the extension of 'call\.ulaw'"):
        input_format("call.ulaw", "wav")
    with pytest.raises(AudioFormatError, match=r"raw mulaw audio needs a sample rate"):
        input_format("call.ulaw", "mulaw")
