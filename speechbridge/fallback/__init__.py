"""Failover: :class:`FallbackSTT` and :class:`FallbackTTS` serve requests from an ordered chain of providers.

The first provider is the primary. A request moves to the next one when a provider fails for a reason of its own
(:func:`is_failover_reason`: dropped or refused connections, rate limits, server faults, a bad or exhausted account,
a broken protocol) or answers nothing for ``no_output_timeout_s``. Errors about the request itself (its audio,
options or voice) are raised at once. A live stream moves mid-way: STT replays the audio no final transcript covers,
TTS speaks again from the first word whose audio was not delivered, and :class:`ProviderSwitched` marks the move.
Failed providers are probed in the background and serve new requests again once they answer.
"""

from __future__ import annotations

from ..events import ProviderSwitched
from .chain import FAILOVER_OPTIONS, AllProvidersFailed, FailoverSettings, is_failover_reason
from .stt import FallbackSTT, FallbackSTTStream
from .tts import FallbackTTS, FallbackTTSStream

__all__ = [
    "FAILOVER_OPTIONS",
    "AllProvidersFailed",
    "FailoverSettings",
    "FallbackSTT",
    "FallbackSTTStream",
    "FallbackTTS",
    "FallbackTTSStream",
    "ProviderSwitched",
    "is_failover_reason",
]
