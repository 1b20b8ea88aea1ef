"""The Gradium tour in examples/ runs as the README shows it, offline, against a front of the local engines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from speechbridge_gradium.server import make_app

from speechbridge.plugins import get_registry
from speechbridge.testing import LiveServer

TOUR = Path(__file__).resolve().parents[3] / "examples" / "gradium_tour.py"


async def test_the_tour_speaks_hears_and_ends_the_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gradium_tour", TOUR)
    assert spec is not None and spec.loader is not None
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    monkeypatch.setenv("GRADIUM_API_KEY", "any-key")
    monkeypatch.chdir(tmp_path)  # no speechbridge.toml
    registry = get_registry()
    app = make_app(registry.stt("local")(), registry.tts("local")())
    async with LiveServer(app) as server:
        lines = await tour.tour(f"{server.url}/api")
    rest = next(line for line in lines if line.startswith("REST heard:"))
    turn = next(line for line in lines if line.startswith("turn ended:"))
    assert any(line.startswith("  ... ") for line in lines)
    for heard in (rest, turn):  # pocketsphinx behind the front: most of the words, not all
        assert len({"book", "table", "two", "seven", "tonight"} & set(heard.lower().split())) >= 4, heard
