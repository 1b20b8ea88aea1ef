"""speechbridge.wire: the safe readers every vendor protocol parses with, on both JSON decoders."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from speechbridge import wire
from speechbridge.errors import ProtocolError


@pytest.fixture(params=[json.loads, orjson.loads], ids=["json", "orjson"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[[str | bytes], Any]:
    """parse_json with the standard library (no fast extra) and with orjson (speechbridge[fast])."""
    monkeypatch.setattr(wire, "_loads", request.param)
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"step","vad":[{"horizon_s":0.5,"inactivity_prob":0.25}],"step_idx":3,"total_duration_s":0.32}',
        b'{"type":"text","text":"caf\\u00e9","start_s":1.5}',
        '  [1, 2.5, "x", null, true]  ',
    ],
)
def test_both_decoders_read_the_same_values(decoder: Callable[[str | bytes], Any], frame: str | bytes) -> None:
    assert wire.parse_json(frame, provider="test") == json.loads(frame)


@pytest.mark.parametrize("frame", ["", "{", "not json", '{"a":1} trailing', b"\xff\xfe", "[" * 100_000])
def test_malformed_or_too_deep_json_is_a_protocol_error(decoder: Callable[[str | bytes], Any], frame: str) -> None:
    with pytest.raises(ProtocolError, match="JSON message"):
        wire.parse_json(frame, provider="test")


def test_non_finite_numbers_never_pass_as_numbers(decoder: Callable[[str | bytes], Any]) -> None:
    for frame in ("NaN", "-Infinity", "1e999"):
        try:
            value = wire.parse_json(frame, provider="test")
        except ProtocolError:
            continue  # orjson refuses NaN and Infinity outright; the standard library reads them
        assert wire.finite(value) is None
    assert wire.finite(10**400) is None
    assert wire.finite(True) is None
    assert wire.finite(2) == 2.0


def test_base64_fields_are_checked() -> None:
    assert wire.decode_base64("AAE=", "audio", provider="test") == b"\x00\x01"
    for bad in ("AA=E", 5, None):
        with pytest.raises(ProtocolError, match="'audio'"):
            wire.decode_base64(bad, "audio", provider="test")


def test_shown_cuts_long_values() -> None:
    assert wire.shown("x" * 10) == repr("x" * 10)
    assert len(wire.shown("x" * 500)) == wire.SHOWN_CHARS + 1
