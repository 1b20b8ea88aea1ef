"""compare_stt / compare_tts end to end: the local backend, scripted and faulty providers, the Gradium front."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from speechbridge.audio import AudioFormat, PCMAudio, decode, encode
from speechbridge.compare import AudioItem, Progress, RetryPolicy, compare_stt, compare_tts
from speechbridge.config import Config
from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    MissingDependency,
    ProviderError,
    RateLimitError,
    TransportError,
)
from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS, scripted_registry

FOX = "The quick brown fox jumps over the lazy dog."
CALL = "Please call me back tomorrow morning."
RATE = 16000
NO_WAIT = RetryPolicy(attempts=3, base_delay_s=0.0)


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def write_clip(folder: Path, name: str, audio: PCMAudio, text: str) -> AudioItem:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.wav").write_bytes(encode(audio, "wav"))
    (folder / f"{name}.txt").write_text(text)
    return AudioItem(name, folder / f"{name}.wav", text)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sentences spoken by the local TTS, with silence before and after, as a folder of wav + txt pairs."""
    folder = tmp_path_factory.mktemp("dataset")
    tts = Config().tts(provider="local")
    for name, text in (("fox", FOX), ("call", CALL)):
        synthesis = asyncio.run(tts.synthesize(text, format=AudioFormat.pcm16(RATE)))
        speech = decode(synthesis.audio, synthesis.format).data
        write_clip(folder, name, PCMAudio(silence(0.4) + speech + silence(0.8), RATE), text)
    return folder


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> AudioItem:
    """Two words of scripted-TTS tones: 0.3 s of silence, about 0.8 s of tones, 1.2 s of silence."""
    folder = tmp_path_factory.mktemp("tones")
    speech = asyncio.run(ScriptedTTS(sample_rate=RATE).synthesize("alpha bravo", format=AudioFormat.pcm16(RATE)))
    return write_clip(folder, "tones", PCMAudio(silence(0.3) + speech.audio + silence(1.2), RATE), "alpha bravo")


@pytest.fixture(scope="module")
def config(dataset: Path) -> Config:
    fox = decode((dataset / "fox.wav").read_bytes())
    fitted = ScriptedSTT.for_audio(fox, FOX.lower().rstrip(".")).settings
    script = {"provider": "scripted", "script": " ".join(fitted.script), "ms_per_word": fitted.ms_per_word}
    return Config.from_dict(
        {
            "profiles": {"sphinx": {"stt": {"provider": "local"}}, "fox-only": {"stt": script}, "voice": {"tts": {}}},
            "pricing": {"local": {"stt_per_minute": 0.006, "tts_per_1k_chars": 0.05}},
        },
        registry=scripted_registry(),
    )


class FaultySTT(ScriptedSTT):
    """Raises the given errors, one per call, before transcribing; counts calls and the most in flight."""

    name: ClassVar[str] = "faulty"

    def __init__(self, *errors: BaseException, hold_s: float = 0.0, **options: Any) -> None:
        super().__init__(**options)
        self.errors = list(errors)
        self.hold_s = hold_s
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def _transcribe(self, audio: bytes, format: AudioFormat, settings: Any) -> Any:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.hold_s)
            if self.errors:
                raise self.errors.pop(0)
            return await super()._transcribe(audio, format, settings)
        finally:
            self.in_flight -= 1


class BrokenTTS(ScriptedTTS):
    name: ClassVar[str] = "broken"

    async def _synthesize(self, text: str, format: AudioFormat, settings: Any) -> Any:
        raise ProviderError("voice not found", code=404)


async def test_local_against_scripted_in_both_modes(dataset, config, tmp_path):
    seen: list[Progress] = []

    comparison = await compare_stt(
        dataset, ["sphinx", "fox-only"], config=config, mode="both", fast=True, out_dir=tmp_path, progress=seen.append
    )

    runs = {run.key: run for run in comparison.runs}
    assert len(comparison.runs) == 8 and all(run.ok for run in comparison.runs)
    assert comparison.profiles == ("sphinx", "fox-only")
    for mode in ("stream", "batch"):
        assert runs["fox", "sphinx", mode].wer <= 0.35
        assert runs["call", "sphinx", mode].wer <= 0.35
        assert runs["fox", "fox-only", mode].wer == 0.0
        assert runs["fox", "fox-only", mode].hypothesis == "the quick brown fox jumps over the lazy dog"
        assert runs["call", "fox-only", mode].wer >= 0.8
    stream, batch = runs["call", "sphinx", "stream"], runs["call", "sphinx", "batch"]
    assert stream.speech_end_s is not None and 0.4 < stream.speech_end_s < stream.audio_s - 0.5
    assert 0 < stream.first_transcript_s < stream.processing_s
    assert stream.ttfs_s is not None and -0.5 < stream.ttfs_s < stream.processing_s
    assert (stream.paced, stream.attempts) == (False, 1)
    assert batch.ttfs_s is None and batch.rtf == pytest.approx(batch.processing_s / batch.audio_s, rel=0.01)
    assert batch.cost_usd == pytest.approx(batch.audio_s / 60 * 0.006)
    assert runs["call", "fox-only", "batch"].cost_usd is None
    lines = [json.loads(line) for line in (tmp_path / "stt_runs.jsonl").read_text().splitlines()]
    assert sorted((line["item"], line["profile"], line["mode"]) for line in lines) == sorted(runs)
    assert comparison.runs_file == tmp_path / "stt_runs.jsonl"
    assert [(s.profile, s.mode, s.runs) for s in comparison.summaries] == [
        ("sphinx", "stream", 2),
        ("sphinx", "batch", 2),
        ("fox-only", "stream", 2),
        ("fox-only", "batch", 2),
    ]
    wer = {(d.mode, d.metric): d for d in comparison.differences}
    assert wer["batch", "wer"].profile_a == "sphinx" and wer["batch", "wer"].pairs == 2
    assert [p.done for p in seen] == list(range(9)) and seen[-1].total == 8


async def test_paced_streaming_takes_real_time_and_times_the_final(tones):
    stt = ScriptedSTT.for_audio(decode(tones.path.read_bytes()), tones.reference, turn_silence_ms=300)
    common = {"mode": "stream", "vad": "energy", "config": Config()}

    paced = (await compare_stt([tones], {"scripted": stt}, **common)).runs[0]
    fast = (await compare_stt([tones], {"scripted": stt}, fast=True, **common)).runs[0]

    assert paced.hypothesis == fast.hypothesis == "alpha bravo"
    assert paced.paced and not fast.paced
    assert paced.processing_s >= paced.audio_s - 0.05
    assert fast.processing_s < paced.audio_s / 3
    assert paced.rtf is None and fast.rtf is not None
    assert paced.speech_end_s == pytest.approx(paced.audio_s - 1.2, abs=0.04)
    assert 0.25 <= paced.ttfs_s <= 0.6  # the scripted STT ends a turn after 300 ms of silence, in 80 ms steps
    assert 0.3 <= paced.first_transcript_s <= paced.speech_end_s + 0.1


async def test_retryable_errors_are_retried_with_exponential_backoff(tones):
    stt = FaultySTT(TransportError("dropped"), ProviderError("busy", code=503, retryable=True), script="alpha bravo")
    policy = RetryPolicy(attempts=3, base_delay_s=0.1, multiplier=2.0)

    started = time.monotonic()
    (run,) = (await compare_stt([tones], {"f": stt}, mode="batch", retry=policy, config=Config())).runs

    assert time.monotonic() - started >= 0.1 + 0.2
    assert (run.ok, run.attempts, stt.calls, run.hypothesis) == (True, 3, 3, "alpha bravo")


async def test_a_rate_limit_waits_as_long_as_the_vendor_says(tones):
    stt = FaultySTT(RateLimitError("slow down", code=429, retry_after=0.3), script="alpha bravo")

    started = time.monotonic()
    (run,) = (await compare_stt([tones], {"f": stt}, mode="batch", retry=NO_WAIT, config=Config())).runs

    assert time.monotonic() - started >= 0.3
    assert (run.ok, run.attempts) == (True, 2)


def test_retry_policy_delays():
    policy = RetryPolicy(attempts=4, base_delay_s=0.5, multiplier=3.0, max_delay_s=2.0)
    transient = TransportError("dropped")
    assert [policy.delay_s(transient, attempt) for attempt in (1, 2, 3, 4)] == [0.5, 1.5, 2.0, None]
    assert policy.delay_s(AuthenticationError("bad key"), 1) is None
    assert policy.delay_s(ProviderError("bad", retryable=False), 1) is None
    assert policy.delay_s(RateLimitError("wait", retry_after=7.0), 1) == 7.0
    assert policy.delay_s(TimeoutError(), 1) == 0.5
    assert policy.delay_s(ValueError("bug"), 1) is None


async def test_failures_are_recorded_and_never_stop_the_run(tones, tmp_path):
    refused = FaultySTT(AuthenticationError("bad key", code=401), script="alpha bravo")
    flaky = FaultySTT(*(TransportError("dropped") for _ in range(5)), script="alpha bravo")
    good = ScriptedSTT(script="alpha bravo")
    profiles = {"refused": refused, "flaky": flaky, "good": good}

    comparison = await compare_stt([tones], profiles, mode="batch", retry=RetryPolicy(attempts=2, base_delay_s=0))

    runs = {run.profile: run for run in comparison.runs}
    assert (runs["refused"].error_type, runs["refused"].attempts) == ("AuthenticationError", 1)
    assert "bad key" in runs["refused"].error and runs["refused"].wer is None
    assert (runs["flaky"].error_type, runs["flaky"].attempts, runs["flaky"].error) == ("TransportError", 2, "dropped")
    assert runs["good"].ok
    assert [(s.profile, s.failures, s.attempts) for s in comparison.summaries] == [
        ("refused", 1, 1),
        ("flaky", 1, 2),
        ("good", 0, 1),
    ]


async def test_a_run_that_hangs_times_out(tmp_path):
    item = write_clip(tmp_path, "short", PCMAudio(silence(0.1), RATE), "nothing")
    stuck = FaultySTT(hold_s=30)

    (run,) = (await compare_stt([item], {"stuck": stuck}, mode="batch", timeout_s=0.2, retry=NO_WAIT)).runs

    assert (run.error_type, run.attempts, stuck.calls) == ("TimeoutError", 3, 3)
    assert run.error == "timed out after 0.3 s"


async def test_concurrency_is_limited_per_provider_across_profiles(tones):
    items = [AudioItem(f"copy-{n}", tones.path, tones.reference) for n in range(6)]
    first, second = FaultySTT(hold_s=0.05), FaultySTT(hold_s=0.05)

    await compare_stt(items, {"a": first, "b": second}, mode="batch", concurrency=2)

    assert first.calls == second.calls == 6
    shared_peak = max(first.most_in_flight, second.most_in_flight)
    assert shared_peak <= 2 and first.most_in_flight + second.most_in_flight >= 2


async def test_a_rerun_skips_what_succeeded_and_redoes_what_failed(tones, tmp_path):
    items = [AudioItem(f"copy-{n}", tones.path, tones.reference) for n in range(3)]
    once = FaultySTT(AuthenticationError("bad key"), script="alpha bravo")
    first = await compare_stt(items, {"s": once}, mode="batch", out_dir=tmp_path, concurrency=1)
    assert [run.ok for run in first.runs] == [False, True, True]

    again = FaultySTT(script="alpha bravo")
    second = await compare_stt(items, {"s": again}, mode="batch", out_dir=tmp_path)

    assert (again.calls, second.resumed) == (1, 2)
    assert all(run.ok for run in second.runs) and [run.item for run in second.runs] == ["copy-0", "copy-1", "copy-2"]
    assert len((tmp_path / "stt_runs.jsonl").read_text().splitlines()) == 4
    fresh = FaultySTT(script="alpha bravo")
    third = await compare_stt(items, {"s": fresh}, mode="batch", out_dir=tmp_path, resume=False)
    assert (fresh.calls, third.resumed) == (3, 0)
    assert len((tmp_path / "stt_runs.jsonl").read_text().splitlines()) == 3


async def test_bad_choices_are_config_errors_before_any_run(dataset, config, tones):
    with pytest.raises(ConfigError, match=r"'nope' is neither a profile with stt nor an STT provider.*sphinx.*local"):
        await compare_stt(dataset, ["sphinx", "nope"], config=config)
    with pytest.raises(ConfigError, match="profile 'voice' has no stt"):
        await compare_stt(dataset, ["voice"], config=config)
    with pytest.raises(ConfigError, match="'sphinx' is listed twice"):
        await compare_stt(dataset, ["sphinx", "sphinx"], config=config)
    with pytest.raises(ConfigError, match=r"unknown mode 'live'.*allowed: stream, batch, both"):
        await compare_stt(dataset, ["sphinx"], config=config, mode="live")
    with pytest.raises(ConfigError, match="concurrency must be a number above 0"):
        await compare_stt(dataset, ["sphinx"], config=config, concurrency=0)
    with pytest.raises(ConfigError, match="not an STTProvider"):
        await compare_stt([tones], {"tts": ScriptedTTS()})
    with pytest.raises(ConfigError, match="no STT profiles"):
        await compare_stt([tones], [], config=config)


async def test_references_without_words_and_a_missing_jiwer_stop_before_any_run(tones, monkeypatch):
    stt = FaultySTT()
    with pytest.raises(ConfigError, match=r"reference '\.\.\.' has no words left"):
        await compare_stt([AudioItem("dots", tones.path, "...")], {"s": stt})
    monkeypatch.setitem(sys.modules, "jiwer", None)
    with pytest.raises(MissingDependency, match=r"speechbridge\[compare\]"):
        await compare_stt([tones], {"s": stt})
    assert stt.calls == 0


async def test_unreadable_audio_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (tmp_path / "bad.txt").write_text("hello")
    with pytest.raises(AudioFormatError, match=r"bad\.wav"):
        await compare_stt(tmp_path, {"s": ScriptedSTT()})


async def test_a_vendor_profile_through_the_gradium_front(dataset, monkeypatch):
    from speechbridge_gradium.server import Faults, make_app

    monkeypatch.setenv("GRADIUM_API_KEY", "gd_test")
    local = Config().stt(provider="local")
    app = make_app(local, None, api_keys=["gd_test"], faults=Faults(drop_after=1, connections=1))
    items = [AudioItem("call", dataset / "call.wav", CALL)]
    async with LiveServer(app) as server:
        no_reconnect = {"reconnects": 0}  # the stream would ride out the drop itself: let compare retry it
        vendor_stt = {"provider": "gradium", "base_url": server.url, "reliability": no_reconnect}
        config = Config.from_dict({"profiles": {"vendor": {"stt": vendor_stt}}})
        comparison = await compare_stt(
            items, ["vendor", "local"], config=config, mode="stream", fast=True, retry=NO_WAIT
        )
    await local.aclose()

    vendor, direct = comparison.runs
    assert (vendor.profile, vendor.provider, direct.provider) == ("vendor", "gradium", "local")
    assert vendor.ok and vendor.wer <= 0.35 and vendor.ttfs_s is not None
    assert vendor.attempts == 2  # the front dropped the first connection; the retry went through
    assert direct.ok and direct.wer <= 0.35


async def test_tts_profiles_judged_by_a_local_round_trip(config, tmp_path):
    texts = ["Good morning to you.", "The weather is nice today."]

    comparison = await compare_tts(
        texts, ["local", "scripted"], judge="sphinx", config=config, mode="both", out_dir=tmp_path
    )

    runs = {run.key: run for run in comparison.runs}
    assert len(runs) == 8 and all(run.ok for run in runs.values())
    for mode in ("stream", "batch"):
        spoken = runs["text-002", "local", mode]
        assert spoken.wer <= 0.4 and spoken.judge == "sphinx"
        assert runs["text-002", "scripted", mode].wer >= 0.6  # tones are not words
        assert 0 < spoken.first_audio_s <= spoken.processing_s
        assert spoken.audio_s > 0.8 and spoken.rtf == pytest.approx(spoken.processing_s / spoken.audio_s, rel=0.01)
        assert spoken.characters == len("The weather is nice today.")
        assert spoken.cost_usd == pytest.approx(spoken.characters / 1000 * 0.05)
    assert runs["text-001", "scripted", "batch"].cost_usd is None
    assert len((tmp_path / "tts_runs.jsonl").read_text().splitlines()) == 8
    assert {s.kind for s in comparison.summaries} == {"tts"}


async def test_tts_and_judge_failures_are_recorded():
    judge = FaultySTT(AuthenticationError("bad key"), script="one")
    tts = {"broken": BrokenTTS(), "fine": ScriptedTTS()}

    comparison = await compare_tts(["one"], tts, judge=judge, mode="batch", retry=NO_WAIT, config=Config())

    broken, fine = comparison.runs
    assert (broken.error_type, broken.attempts, broken.audio_s) == ("ProviderError", 1, None)
    assert "voice not found" in broken.error
    assert fine.error.startswith("judge faulty: bad key") and fine.audio_s > 0 and fine.wer is None
