from __future__ import annotations

import pytest
import speechbridge_local
from speechbridge_local import LocalSTT, LocalTTS

from speechbridge.errors import ConfigError
from speechbridge.plugins import build_registry, get_registry, plugin_manager


def test_entry_point_registers_both_providers() -> None:
    registry = get_registry(reload=True)
    assert registry.stt("local") is LocalSTT
    assert registry.tts("local") is LocalTTS
    origins = {(info.kind, info.plugin, info.distribution) for info in registry if info.name == "local"}
    assert origins == {("stt", "local", "speechbridge-local"), ("tts", "local", "speechbridge-local")}


def test_importing_the_package_registers_nothing() -> None:
    assert speechbridge_local.LocalSTT is LocalSTT
    registry = build_registry(plugin_manager(load_entrypoints=False))
    with pytest.raises(ConfigError):
        registry.stt("local")


def test_capabilities_are_data() -> None:
    stt, tts = LocalSTT.capabilities, LocalTTS.capabilities
    assert (stt.batch, stt.streaming, stt.interim_results, stt.word_timestamps) == (True, True, True, True)
    assert (stt.flush, stt.vad, stt.turn_detection) == (True, True, True)
    assert stt.languages == ("en",) and stt.sample_rates == (16000,)
    assert tts.word_timestamps is False and tts.sample_rates == (24000,)
