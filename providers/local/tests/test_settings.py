from __future__ import annotations

from typing import Any

import hibari.voices
import pytest
from speechbridge_local import LocalSTT, LocalTTS

from speechbridge.errors import ConfigError


def test_defaults() -> None:
    settings = LocalSTT().settings
    assert (settings.language, settings.interim_results, settings.vad_aggressiveness) == ("en", True, 2)
    assert settings.silence_ms == 800 and 30 <= settings.dither <= 60
    assert (LocalTTS().settings.voice, LocalTTS().settings.seed) == ("heart", 0)


@pytest.mark.parametrize(
    ("options", "named", "allowed"),
    [
        ({"language": "fr"}, "language", ("en",)),
        ({"vad_aggressiveness": 4}, "vad_aggressiveness", (0, 1, 2, 3)),
        ({"interim_results": "yes"}, "interim_results", (True, False)),
        ({"silence_ms": 50}, "silence_ms", None),
        ({"dither": -1}, "dither", None),
        ({"dither": "lots"}, "dither", None),
        ({"end_of_turn": "vad"}, "end_of_turn", ("silence", "smart-turn")),
        (
            {"beam": 1e-40},
            "beam",
            ("language", "interim_results", "vad_aggressiveness", "silence_ms", "dither", "end_of_turn"),
        ),
    ],
)
def test_bad_stt_settings_name_the_option_and_what_is_accepted(
    options: dict[str, Any], named: str, allowed: tuple[object, ...] | None
) -> None:
    with pytest.raises(ConfigError) as caught:
        LocalSTT(**options)
    assert named in str(caught.value)
    assert caught.value.allowed == allowed
    if allowed is None:
        assert "out of range" in str(caught.value) or "number" in str(caught.value)


async def test_bad_settings_per_call_are_rejected_too(stt: LocalSTT) -> None:
    with pytest.raises(ConfigError, match="vad_aggressiveness"):
        stt.stream(format="pcm_16000", vad_aggressiveness=9)
    with pytest.raises(ConfigError, match="silence_ms"):
        await stt.transcribe(b"\0\0" * 1600, format="pcm_16000", silence_ms=20_000)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"speed": 3.0}, "speed"), ({"speed": 0.1}, "speed"), ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed")],
)
def test_bad_tts_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalTTS(**options)


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("hibari tried to download a voice")

    monkeypatch.setattr(hibari.voices, "download", refuse)


@pytest.mark.usefixtures("no_downloads")
async def test_unknown_voice_is_refused_before_hibari_downloads(tts: LocalTTS) -> None:
    for voice in ("emma", "no-such-voice"):
        with pytest.raises(ConfigError) as caught:
            await tts.synthesize("Hello.", voice=voice)
        assert voice in str(caught.value) and caught.value.allowed == ("heart",)
        with pytest.raises(ConfigError, match="heart"):
            tts.stream(voice=voice)
    with pytest.raises(ConfigError, match="emma"):
        LocalTTS(voice="emma")
