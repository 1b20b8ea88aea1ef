"""A/B comparison of speech vendors on your own audio: WER, latency and cost per profile.

>>> comparison = await compare_stt("recordings/", ["local", "gradium"], mode="both", out_dir="results/")
>>> comparison.summaries[0].wer, comparison.differences[0].significant

See :mod:`speechbridge.compare.runner` for how runs are made, :mod:`.metrics` for what is measured and
:mod:`.stats` for the statistics.
"""

from .inputs import AudioItem, TextItem, load_audio_items, load_texts
from .metrics import Pricing, default_normalizer, speech_end_s, word_errors
from .records import Comparison, Difference, MetricSummary, Mode, ProfileSummary, STTRun, TTSRun
from .runner import Progress, RetryPolicy, compare_stt, compare_tts
from .stats import differences, paired_difference, percentile, summarize
from .store import STT_RUNS_FILE, TTS_RUNS_FILE, RunStore

__all__ = [
    "STT_RUNS_FILE",
    "TTS_RUNS_FILE",
    "AudioItem",
    "Comparison",
    "Difference",
    "MetricSummary",
    "Mode",
    "Pricing",
    "ProfileSummary",
    "Progress",
    "RetryPolicy",
    "RunStore",
    "STTRun",
    "TTSRun",
    "TextItem",
    "compare_stt",
    "compare_tts",
    "default_normalizer",
    "differences",
    "load_audio_items",
    "load_texts",
    "paired_difference",
    "percentile",
    "speech_end_s",
    "summarize",
    "word_errors",
]
