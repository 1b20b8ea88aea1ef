"""The ElevenLabs plugin registers its providers and its front; the front's server extra is needed only to make one."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx

from speechbridge import plugins
from speechbridge.testing import ScriptedSTT, ScriptedTTS


def test_registered_from_the_installed_distribution() -> None:
    registry = plugins.build_registry(plugins.plugin_manager())
    front = next(front for front in registry.fronts() if front.name == "elevenlabs")
    assert front.distribution == "speechbridge-elevenlabs"
    assert "speechbridge_elevenlabs.server.make_app" in (front.factory.__doc__ or "")
    assert registry.stt("elevenlabs").__name__ == "ElevenLabsSTT"
    assert registry.tts("elevenlabs").__name__ == "ElevenLabsTTS"


async def test_the_front_serves_elevenlabs_with_the_keys_it_is_given() -> None:
    app = plugins.get_registry().front("elevenlabs")(ScriptedSTT(), ScriptedTTS(), api_keys=["right"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front") as client:
        refused = await client.get("/v1/voices", headers={"xi-api-key": "wrong"})
        voices = await client.get("/v1/voices", headers={"xi-api-key": "right"})
    assert refused.status_code == 401 and refused.json()["detail"]["status"] == "invalid_api_key"
    assert {"sine", "square"} <= {voice["voice_id"] for voice in voices.json()["voices"]}


def test_without_the_server_extra_the_providers_load_and_the_front_names_it() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["starlette"] = None  # as if speechbridge[server] were not installed
        from speechbridge.errors import MissingDependency
        from speechbridge.plugins import get_registry
        registry = get_registry()
        print("elevenlabs" in registry.names("stt"), "elevenlabs" in registry.names("tts"))
        try:
            registry.front("elevenlabs")(None, None)
        except MissingDependency as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True True",
        "this needs the 'starlette' package: pip install 'speechbridge[server]'",
    ]
