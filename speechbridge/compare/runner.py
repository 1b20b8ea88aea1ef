"""Running a comparison: every item x profile x mode, concurrently per provider, retried, resumable.

:func:`compare_stt` streams each recording at real-time pace (audio goes out as a microphone would deliver it,
one chunk per chunk duration) unless ``fast``, and/or sends it whole (``batch``). :func:`compare_tts` speaks each
text through each TTS profile and has a judge STT transcribe the result. A failed run is recorded with its error
and never stops the others; with an output directory every run is appended to a JSONL file as it finishes, and a
rerun skips the runs that already succeeded.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import attrs

from ..audio import AudioFormat, PCMAudio, decode, read_file, resample
from ..config import Config, load_config
from ..errors import AudioFormatError, ConfigError, RateLimitError
from ..events import AudioChunk, Transcript
from ..plugins import get_registry
from ..provider import Provider
from ..stt import STTProvider
from ..tts import TTSProvider
from .inputs import AudioItem, TextItem, load_audio_items, load_texts
from .metrics import Normalizer, Pricing, check_reference, get_normalizer, load_jiwer, speech_end_s, word_errors
from .records import MODES, Comparison, Mode, STTRun, TTSRun
from .stats import differences, summarize
from .store import STT_RUNS_FILE, TTS_RUNS_FILE, RunStore

__all__ = ["Progress", "RetryPolicy", "compare_stt", "compare_tts"]

COVER_TOLERANCE_S: Final = 0.3
TTS_RATE: Final = 24000
TTS_FORMAT: Final = AudioFormat.pcm16(TTS_RATE)
MODE_CHOICES: Final = (*MODES, "both")

T = TypeVar("T")
P = TypeVar("P", bound=Provider[Any])


@attrs.frozen
class RetryPolicy:
    """Retry an error whose ``retryable`` is true (and a run's timeout) up to ``attempts`` tries in all.

    The wait before try ``n + 1`` is ``base_delay_s * multiplier ** (n - 1)``, at most ``max_delay_s``; a
    :class:`RateLimitError` with ``retry_after`` waits exactly that long instead.
    """

    attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    base_delay_s: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_delay_s: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))

    def delay_s(self, error: BaseException, attempt: int) -> float | None:
        """Seconds to wait before trying again after ``error`` on try ``attempt``, or None to give up."""
        retryable = isinstance(error, TimeoutError) or getattr(error, "retryable", False)
        if not retryable or attempt >= self.attempts:
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return float(min(self.max_delay_s, self.base_delay_s * self.multiplier ** (attempt - 1)))


@attrs.frozen
class Progress:
    """Where a comparison stands: ``done`` of ``total`` runs (``skipped`` resumed, ``failed`` failed).

    ``run`` is the run that just finished, or None for the first report before any run.
    """

    done: int
    total: int
    failed: int
    skipped: int
    run: STTRun | TTSRun | None = None


ProgressCallback = Callable[[Progress], None]


@attrs.frozen
class _Recording:
    item: AudioItem
    audio: PCMAudio
    speech_end_s: float | None


@attrs.frozen
class _Target:
    label: str
    provider: Any
    owned: bool


@attrs.frozen
class _Outcome:
    value: Any
    error: BaseException | None
    attempts: int


async def compare_stt(
    source: str | os.PathLike[str] | Sequence[AudioItem],
    profiles: Sequence[str] | Mapping[str, STTProvider[Any]],
    *,
    config: Config | None = None,
    mode: str | Sequence[str] = "stream",
    fast: bool = False,
    concurrency: int = 2,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    retry: RetryPolicy = RetryPolicy(),
    normalizer: str | Normalizer = "default",
    vad: str = "auto",
    chunk_ms: float = 40.0,
    timeout_s: float = 60.0,
    pricing: Pricing | None = None,
    baseline: str | None = None,
    resamples: int = 2000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Comparison:
    """Transcribe every recording of ``source`` with every STT profile and measure WER, latency and cost.

    ``source`` is a folder or manifest (see :mod:`speechbridge.compare.inputs`) or a list of items. ``profiles``
    are names of ``[profiles.<name>]`` in the config or provider names, or a mapping of labels to providers.
    ``mode`` is ``"stream"``, ``"batch"`` or ``"both"``. ``concurrency`` limits the runs in flight per provider;
    ``timeout_s`` bounds each try beyond the recording's own length. Differences are against ``baseline``
    (default: the first profile).
    """
    config = config if config is not None else load_config()
    modes = _modes(mode)
    _check_positive(concurrency=concurrency, chunk_ms=chunk_ms, timeout_s=timeout_s)
    normalize = get_normalizer(normalizer)
    load_jiwer()
    items = list(source) if not isinstance(source, (str, os.PathLike)) else load_audio_items(source)
    _check_unique_ids(item.id for item in items)
    recordings = [await asyncio.to_thread(_prepare, item, vad, normalize) for item in items]
    prices = pricing if pricing is not None else Pricing.from_config(config)
    targets = _targets("stt", profiles, config)
    try:
        limits = _Limits(concurrency)

        async def run_one(recording: _Recording, target: _Target, each: Mode) -> STTRun:
            return await _stt_run(
                recording,
                target,
                each,
                fast=fast,
                chunk_s=chunk_ms / 1000,
                timeout_s=timeout_s,
                retry=retry,
                limit=limits(target.provider),
                normalize=normalize,
                prices=prices,
            )

        plan = [(recording, target, each) for recording in recordings for target in targets for each in modes]
        keyed = [((rec.item.id, target.label, each), (rec, target, each)) for rec, target, each in plan]
        runs, resumed, store = await _execute(keyed, run_one, out_dir, STT_RUNS_FILE, STTRun, resume, progress)
    finally:
        await _close(targets)
    return Comparison(
        kind="stt",
        profiles=tuple(target.label for target in targets),
        runs=runs,
        summaries=summarize(runs),
        differences=differences(runs, baseline=baseline, resamples=resamples, seed=seed),
        runs_file=store.path if store is not None else None,
        resumed=resumed,
    )


async def compare_tts(
    texts: str | os.PathLike[str] | Sequence[TextItem] | Sequence[str],
    profiles: Sequence[str] | Mapping[str, TTSProvider[Any]],
    *,
    judge: str | STTProvider[Any] | None = None,
    config: Config | None = None,
    mode: str | Sequence[str] = "stream",
    concurrency: int = 2,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    retry: RetryPolicy = RetryPolicy(),
    normalizer: str | Normalizer = "default",
    timeout_s: float = 60.0,
    pricing: Pricing | None = None,
    baseline: str | None = None,
    resamples: int = 2000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Comparison:
    """Speak every text with every TTS profile; measure time to first audio, speed, cost and, when a ``judge`` STT
    (profile or provider name, or a provider) is given, intelligibility as the WER of its transcript."""
    config = config if config is not None else load_config()
    modes = _modes(mode)
    _check_positive(concurrency=concurrency, timeout_s=timeout_s)
    normalize = get_normalizer(normalizer)
    if judge is not None:
        load_jiwer()
    items = _text_items(texts)
    _check_unique_ids(item.id for item in items)
    for item in items:
        check_reference(item.text, normalize)
    prices = pricing if pricing is not None else Pricing.from_config(config)
    judges: list[_Target] = []
    targets: list[_Target] = []
    try:
        if judge is not None:
            judges = _targets("stt", {judge.name: judge} if isinstance(judge, STTProvider) else [judge], config)
        targets = _targets("tts", profiles, config)
        limits = _Limits(concurrency)
        judge_target = judges[0] if judges else None

        async def run_one(item: TextItem, target: _Target, each: Mode) -> TTSRun:
            return await _tts_run(
                item,
                target,
                each,
                judge=judge_target,
                timeout_s=timeout_s,
                retry=retry,
                limits=limits,
                normalize=normalize,
                prices=prices,
            )

        plan = [(item, target, each) for item in items for target in targets for each in modes]
        keyed = [((item.id, target.label, each), (item, target, each)) for item, target, each in plan]
        runs, resumed, store = await _execute(keyed, run_one, out_dir, TTS_RUNS_FILE, TTSRun, resume, progress)
    finally:
        await _close(targets + judges)
    return Comparison(
        kind="tts",
        profiles=tuple(target.label for target in targets),
        runs=runs,
        summaries=summarize(runs),
        differences=differences(runs, baseline=baseline, resamples=resamples, seed=seed),
        runs_file=store.path if store is not None else None,
        resumed=resumed,
    )


# --- planning ------------------------------------------------------------------------------------------------


def _modes(mode: str | Sequence[str]) -> tuple[Mode, ...]:
    asked = [mode] if isinstance(mode, str) else list(mode)
    if not asked:
        raise ConfigError("no mode given", allowed=MODE_CHOICES)
    modes: list[Mode] = []
    for each in asked:
        if each not in MODE_CHOICES:
            raise ConfigError(f"unknown mode {each!r}", allowed=MODE_CHOICES)
        modes += list(MODES) if each == "both" else [each]  # type: ignore[list-item]
    return tuple(dict.fromkeys(modes))


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{name} must be a number above 0, not {value!r}")


def _check_unique_ids(ids: Any) -> None:
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise ConfigError(f"the item id {item_id!r} is used twice; ids must be unique")
        seen.add(item_id)


def _prepare(item: AudioItem, vad: str, normalize: Normalizer) -> _Recording:
    check_reference(item.reference, normalize)
    audio = read_file(item.path)
    if not audio.data:
        raise AudioFormatError(f"{item.path}: the recording holds no audio")
    return _Recording(item, audio, speech_end_s(audio, vad=vad))


def _text_items(texts: str | os.PathLike[str] | Sequence[TextItem] | Sequence[str]) -> list[TextItem]:
    if isinstance(texts, (str, os.PathLike)):
        return load_texts(texts)
    items: list[TextItem] = []
    for number, text in enumerate(texts, 1):
        if isinstance(text, TextItem):
            items.append(text)
        elif isinstance(text, str) and text.strip():
            items.append(TextItem(f"text-{number:03d}", text.strip()))
        else:
            raise ConfigError(f"text {number} must be non-empty text or a TextItem, not {text!r}")
    if not items:
        raise ConfigError("no texts to speak")
    return items


def _targets(kind: Literal["stt", "tts"], profiles: Any, config: Config) -> list[_Target]:
    """The providers to compare, labelled: from a mapping of labels to providers, or profile / provider names."""
    base = STTProvider if kind == "stt" else TTSProvider
    if isinstance(profiles, Mapping):
        for label, provider in profiles.items():
            if not isinstance(provider, base):
                raise ConfigError(f"{label!r} maps to {provider!r}, not an {base.__name__}")
        targets = [_Target(str(label), provider, owned=False) for label, provider in profiles.items()]
    else:
        names = [profiles] if isinstance(profiles, str) else list(profiles)
        targets = [_Target(name, _make(kind, name, config), owned=True) for name in names]
    if not targets:
        raise ConfigError(f"no {kind.upper()} profiles to compare")
    labels = [target.label for target in targets]
    for label in labels:
        if labels.count(label) > 1:
            raise ConfigError(f"the profile {label!r} is listed twice")
    return targets


def _make(kind: Literal["stt", "tts"], name: str, config: Config) -> Provider[Any]:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a profile is named by text, not {name!r}")
    registry = config.registry if config.registry is not None else get_registry()
    if name in config.profiles:
        if getattr(config.profiles[name], kind) is None:
            raise ConfigError(f"profile {name!r} has no {kind} = {{...}} to compare")
        return config.stt(profile=name) if kind == "stt" else config.tts(profile=name)
    if name in registry.names(kind):
        return config.stt(provider=name) if kind == "stt" else config.tts(provider=name)
    allowed = [*(p for p in config.profile_names if getattr(config.profiles[p], kind)), *registry.names(kind)]
    raise ConfigError(f"{name!r} is neither a profile with {kind} nor an {kind.upper()} provider", allowed=allowed)


async def _close(targets: Sequence[_Target]) -> None:
    for target in targets:
        if target.owned:
            await target.provider.aclose()


class _Limits:
    """One semaphore per provider name: the concurrency cap applies to a vendor across its profiles."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def __call__(self, provider: Provider[Any]) -> asyncio.Semaphore:
        return self._semaphores.setdefault(provider.name, asyncio.Semaphore(self.concurrency))


# --- executing -----------------------------------------------------------------------------------------------


R = TypeVar("R", STTRun, TTSRun)


async def _execute(
    keyed: Sequence[tuple[tuple[str, str, str], tuple[Any, ...]]],
    run_one: Callable[..., Awaitable[R]],
    out_dir: str | os.PathLike[str] | None,
    file_name: str,
    record: type[R],
    resume: bool,
    progress: ProgressCallback | None,
) -> tuple[list[R], int, RunStore[R] | None]:
    """Run every planned key not already done, appending each run as it finishes; runs come back in plan order."""
    store = RunStore(Path(out_dir) / file_name, record) if out_dir is not None else None
    previous: dict[tuple[str, str, str], R] = {}
    if store is not None:
        if resume:
            previous = store.load()
        elif store.path.exists():
            store.path.unlink()
    done = {key: run for key, run in previous.items() if run.ok}
    todo = [(key, args) for key, args in keyed if key not in done]
    skipped = len(keyed) - len(todo)
    counts = {"done": skipped, "failed": 0}

    def report(run: R | None) -> None:
        if progress is not None:
            progress(Progress(counts["done"], len(keyed), counts["failed"], skipped, run))

    report(None)
    results: dict[tuple[str, str, str], R] = {}

    async def one(key: tuple[str, str, str], args: tuple[Any, ...]) -> None:
        run = await run_one(*args)
        results[key] = run
        if store is not None:
            store.append(run)
        counts["done"] += 1
        counts["failed"] += 0 if run.ok else 1
        report(run)

    await asyncio.gather(*(one(key, args) for key, args in todo))
    runs = [results[key] if key in results else done[key] for key, _ in keyed]
    return runs, skipped, store


async def _attempt(
    work: Callable[[], Awaitable[T]], retry: RetryPolicy, limit: asyncio.Semaphore, timeout_s: float
) -> _Outcome:
    """``work`` under the provider's concurrency limit and a timeout, retried by ``retry``; errors are returned."""
    attempt = 0
    while True:
        attempt += 1
        try:
            async with limit, asyncio.timeout(timeout_s):
                return _Outcome(await work(), None, attempt)
        except Exception as exc:
            delay = retry.delay_s(exc, attempt)
            if delay is None:
                return _Outcome(None, exc, attempt)
        await asyncio.sleep(delay)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and collect its end, so a failure already raised elsewhere is not reported twice."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _error_text(error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    return str(error) or type(error).__name__


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _clock() -> float:
    return asyncio.get_running_loop().time()


# --- STT -----------------------------------------------------------------------------------------------------


@attrs.frozen
class _Heard:
    hypothesis: str
    first_transcript_s: float | None
    ttfs_s: float | None
    processing_s: float


async def _stt_run(
    recording: _Recording,
    target: _Target,
    mode: Mode,
    *,
    fast: bool,
    chunk_s: float,
    timeout_s: float,
    retry: RetryPolicy,
    limit: asyncio.Semaphore,
    normalize: Normalizer,
    prices: Pricing,
) -> STTRun:
    provider: STTProvider[Any] = target.provider
    audio_s = recording.audio.duration_s
    started_at = _now()
    if mode == "stream":
        outcome = await _attempt(
            lambda: _stream(provider, recording, paced=not fast, chunk_s=chunk_s), retry, limit, timeout_s + audio_s
        )
    else:
        outcome = await _attempt(lambda: _batch(provider, recording.audio), retry, limit, timeout_s + audio_s)
    run = STTRun(
        item=recording.item.id,
        profile=target.label,
        provider=provider.name,
        mode=mode,
        reference=recording.item.reference,
        audio_s=round(audio_s, 4),
        paced=mode == "stream" and not fast,
        attempts=outcome.attempts,
        speech_end_s=recording.speech_end_s,
        started_at=started_at,
    )
    if outcome.error is not None:
        error = outcome.error
        return attrs.evolve(run, error=_error_text(error, timeout_s + audio_s), error_type=type(error).__name__)
    heard: _Heard = outcome.value
    errors = word_errors(recording.item.reference, heard.hypothesis, normalize)
    unpaced = mode == "batch" or fast
    return attrs.evolve(
        run,
        hypothesis=heard.hypothesis,
        wer=errors.wer,
        substitutions=errors.substitutions,
        deletions=errors.deletions,
        insertions=errors.insertions,
        hits=errors.hits,
        reference_words=errors.reference_words,
        first_transcript_s=heard.first_transcript_s,
        ttfs_s=heard.ttfs_s,
        processing_s=round(heard.processing_s, 4),
        rtf=round(heard.processing_s / audio_s, 4) if unpaced else None,
        cost_usd=prices.stt_cost(provider.name, audio_s),
    )


async def _batch(provider: STTProvider[Any], audio: PCMAudio) -> _Heard:
    start = _clock()
    transcript = await provider.transcribe(audio)
    elapsed = _clock() - start
    return _Heard(transcript.text.strip(), round(elapsed, 4) if transcript.text.strip() else None, None, elapsed)


async def _stream(provider: STTProvider[Any], recording: _Recording, *, paced: bool, chunk_s: float) -> _Heard:
    """Send the recording in chunks (each at the moment it would have been recorded, when ``paced``) while
    collecting transcripts; TTFS runs from sending the chunk where speech ends to the final that covers it."""
    audio = recording.audio
    chunk_bytes = 2 * max(1, round(chunk_s * audio.sample_rate))
    first_text_at: float | None = None
    finals: list[tuple[float, Transcript]] = []
    async with provider.stream(format=audio.format) as stream:

        async def receive() -> None:
            nonlocal first_text_at
            async for event in stream:
                if isinstance(event, Transcript) and event.text.strip():
                    first_text_at = first_text_at if first_text_at is not None else _clock()
                    if event.is_final:
                        finals.append((_clock(), event))

        receiver = asyncio.create_task(receive())
        try:
            start = _clock()
            speech_end_sent: float | None = None
            for offset in range(0, len(audio.data), chunk_bytes):
                chunk = audio.data[offset : offset + chunk_bytes]
                chunk_end_s = (offset + len(chunk)) / 2 / audio.sample_rate
                if paced:
                    await asyncio.sleep(max(0.0, start + chunk_end_s - _clock()))
                await stream.send_audio(chunk)
                if not paced:
                    await asyncio.sleep(0)
                end_s = recording.speech_end_s
                if speech_end_sent is None and end_s is not None and chunk_end_s >= end_s:
                    speech_end_sent = _clock()
            await stream.end()
            await receiver
        finally:
            await _stop(receiver)
        finished = _clock()
    hypothesis = " ".join(event.text.strip() for _, event in finals)
    ttfs_s = None
    if speech_end_sent is not None and finals and recording.speech_end_s is not None:
        end_s = recording.speech_end_s
        covering = [at for at, event in finals if event.end_s is not None and event.end_s >= end_s - COVER_TOLERANCE_S]
        ttfs_s = round((covering[0] if covering else finals[-1][0]) - speech_end_sent, 4)
    first = round(first_text_at - start, 4) if first_text_at is not None else None
    return _Heard(hypothesis, first, ttfs_s, finished - start)


# --- TTS -----------------------------------------------------------------------------------------------------


@attrs.frozen
class _Spoken:
    audio: PCMAudio
    first_audio_s: float
    processing_s: float


async def _tts_run(
    item: TextItem,
    target: _Target,
    mode: Mode,
    *,
    judge: _Target | None,
    timeout_s: float,
    retry: RetryPolicy,
    limits: _Limits,
    normalize: Normalizer,
    prices: Pricing,
) -> TTSRun:
    provider: TTSProvider[Any] = target.provider
    speak = _speak_streaming if mode == "stream" else _speak_batch
    outcome = await _attempt(lambda: speak(provider, item.text), retry, limits(provider), timeout_s)
    run = TTSRun(
        item=item.id,
        profile=target.label,
        provider=provider.name,
        mode=mode,
        reference=item.text,
        characters=len(item.text),
        judge=judge.label if judge is not None else None,
        attempts=outcome.attempts,
        started_at=_now(),
    )
    if outcome.error is not None:
        return attrs.evolve(run, error=_error_text(outcome.error, timeout_s), error_type=type(outcome.error).__name__)
    spoken: _Spoken = outcome.value
    audio_s = spoken.audio.duration_s
    run = attrs.evolve(
        run,
        audio_s=round(audio_s, 4),
        first_audio_s=round(spoken.first_audio_s, 4),
        processing_s=round(spoken.processing_s, 4),
        rtf=round(spoken.processing_s / audio_s, 4),
        cost_usd=prices.tts_cost(provider.name, len(item.text)),
    )
    if judge is None:
        return run
    judge_provider: STTProvider[Any] = judge.provider
    heard = await _attempt(lambda: judge_provider.transcribe(spoken.audio), retry, limits(judge_provider), timeout_s)
    if heard.error is not None:
        message = f"judge {judge.label}: {_error_text(heard.error, timeout_s)}"
        return attrs.evolve(run, error=message, error_type=type(heard.error).__name__)
    hypothesis = heard.value.text.strip()
    errors = word_errors(item.text, hypothesis, normalize)
    return attrs.evolve(
        run,
        hypothesis=hypothesis,
        wer=errors.wer,
        substitutions=errors.substitutions,
        deletions=errors.deletions,
        insertions=errors.insertions,
        hits=errors.hits,
        reference_words=errors.reference_words,
    )


def _spoken(pcm: bytes, first_audio_s: float | None, processing_s: float, provider: str) -> _Spoken:
    if not pcm or first_audio_s is None:
        raise AudioFormatError("the provider produced no audio", provider=provider)
    return _Spoken(PCMAudio(pcm, TTS_RATE), first_audio_s, processing_s)


async def _speak_batch(provider: TTSProvider[Any], text: str) -> _Spoken:
    start = _clock()
    synthesis = await provider.synthesize(text, format=TTS_FORMAT)
    elapsed = _clock() - start
    if not synthesis.audio:
        return _spoken(b"", None, elapsed, provider.name)
    pcm = resample(decode(synthesis.audio, synthesis.format), TTS_RATE)
    return _spoken(pcm.data, elapsed, elapsed, provider.name)


async def _speak_streaming(provider: TTSProvider[Any], text: str) -> _Spoken:
    pcm = bytearray()
    first_audio_at: float | None = None
    async with provider.stream(format=TTS_FORMAT) as stream:

        async def receive() -> None:
            nonlocal first_audio_at
            async for event in stream:
                if isinstance(event, AudioChunk) and event.data:
                    first_audio_at = first_audio_at if first_audio_at is not None else _clock()
                    pcm.extend(event.data)

        receiver = asyncio.create_task(receive())
        try:
            start = _clock()
            await stream.send_text(text)
            await stream.end()
            await receiver
        finally:
            await _stop(receiver)
        finished = _clock()
    first = first_audio_at - start if first_audio_at is not None else None
    return _spoken(bytes(pcm), first, finished - start, provider.name)
