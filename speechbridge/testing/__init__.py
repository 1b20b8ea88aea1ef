"""Test your speech app offline: scripted providers, speech samples, a pytest plugin and the backend contract.

- :class:`ScriptedSTT` / :class:`ScriptedTTS`: deterministic providers that really process audio and text.
- :func:`scripted_registry`: the installed backends plus the scripted ones.
- ``speechbridge.testing.pytest_plugin`` (loaded automatically): fixtures ``scripted_stt``, ``scripted_tts``,
  ``speech_sample`` and ``speech_registry``.
- :class:`ChaosProxy`: a TCP proxy in front of any server that cuts or stalls connections (network faults).
- :class:`DropTest`: seeded runs of an STT provider through a :class:`ChaosProxy` that cuts its connections, compared
  with the run without cuts, to check that it (or an app on it) survives drops without losing words.
- :class:`LiveServer`: runs an ASGI app (such as a provider's wire-compatible front) on a local port in the test's loop;
  :class:`ThreadedServer` runs one on its own loop in a thread, for synchronous clients.
- ``speechbridge.testing.contract``: ``STTContract`` / ``TTSContract``, the suite every backend passes.
- ``speechbridge.testing.guides``: runs the fenced code blocks of a Markdown page, in order, to check its examples.
"""

from __future__ import annotations

from .chaos import ChaosProxy
from .drops import DropRun, DropSpeech, DropTest
from .plugin import scripted_registry
from .samples import DEFAULT_TEXT, SpeechSample, make_speech_sample, word_overlap, words_of
from .scripted import ScriptedSTT, ScriptedTTS
from .servers import LiveServer, ThreadedServer

__all__ = [
    "DEFAULT_TEXT",
    "ChaosProxy",
    "DropRun",
    "DropSpeech",
    "DropTest",
    "LiveServer",
    "ScriptedSTT",
    "ScriptedTTS",
    "SpeechSample",
    "ThreadedServer",
    "make_speech_sample",
    "scripted_registry",
    "word_overlap",
    "words_of",
]
