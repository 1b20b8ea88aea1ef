"""A wire-compatible Gradium server (a "front") that delegates to any speechbridge STT and TTS providers.

Backed by the scripted providers it is a deterministic fake Gradium for tests; backed by the local ones it serves
real transcripts offline; backed by a cloud provider it is a gateway. Needs the ``server`` extra (starlette)::

    from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS
    from speechbridge_gradium.server import make_app

    async with LiveServer(make_app(ScriptedSTT(script="hello world"), ScriptedTTS())) as server:
        client = GradiumClient(base_url=server.url + "/api/", api_key="test-key")
"""

from __future__ import annotations

from .app import DEFAULT_CREDITS, GradiumFront, make_app
from .faults import Faults

__all__ = ["DEFAULT_CREDITS", "Faults", "GradiumFront", "make_app"]
