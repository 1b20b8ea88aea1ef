"""A wire-compatible ElevenLabs server (a "front") that delegates to any speechbridge STT and TTS providers.

Backed by the scripted providers it is a deterministic fake ElevenLabs for tests; backed by the local ones it serves
offline; backed by a cloud provider it is a gateway. Needs the ``server`` extra (starlette, python-multipart)::

    async with LiveServer(make_app(ScriptedSTT(script="hello world"), ScriptedTTS())) as server:
        client = ElevenLabs(api_key="test-key", base_url=server.url)
"""

from __future__ import annotations

from .app import ElevenLabsFront, make_app

__all__ = ["ElevenLabsFront", "make_app"]
