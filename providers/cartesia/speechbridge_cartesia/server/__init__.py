"""A wire-compatible Cartesia server (a "front") that delegates to any speechbridge STT and TTS providers.

Backed by the scripted providers it is a deterministic fake Cartesia for tests; backed by the local ones it serves
real speech offline; backed by a cloud provider it is a gateway. Needs the ``server`` extra (starlette)::

    from speechbridge.testing import LiveServer, ScriptedSTT, ScriptedTTS
    from speechbridge_cartesia.server import make_app

    async with LiveServer(make_app(ScriptedSTT(script="hello world"), ScriptedTTS())) as server:
        stt = CartesiaSTT(base_url=server.url, api_key="test-key")
"""

from __future__ import annotations

from .app import CartesiaFront, make_app

__all__ = ["CartesiaFront", "make_app"]
