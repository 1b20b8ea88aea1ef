"""The Gradium plugin registers its providers and its front; the front's server extra is needed only to make one."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx

from speechbridge import plugins
from speechbridge.testing import ScriptedSTT, ScriptedTTS


def test_registered_from_the_installed_distribution():
    registry = plugins.build_registry(plugins.plugin_manager())
    front = next(front for front in registry.fronts() if front.name == "gradium")
    assert (front.plugin, front.distribution) == ("gradium", "speechbridge-gradium")
    assert "speechbridge_gradium.server.make_app" in (front.factory.__doc__ or "")
    assert registry.stt("gradium").__name__ == "GradiumSTT"
    assert registry.tts("gradium").__name__ == "GradiumTTS"


async def test_the_front_serves_gradium_with_the_keys_it_is_given():
    app = plugins.get_registry().front("gradium")(ScriptedSTT(), ScriptedTTS(), api_keys=["right"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front") as client:
        refused = await client.get("/api/usages/credits", headers={"x-api-key": "wrong"})
        voices = await client.get("/api/voices/", headers={"x-api-key": "right"})
    assert refused.status_code == 401
    assert {"sine", "square"} <= {voice["uid"] for voice in voices.json()}


def test_without_the_server_extra_the_providers_load_and_the_front_names_it():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["starlette"] = None  # as if speechbridge[server] were not installed
        from speechbridge.errors import MissingDependency
        from speechbridge.plugins import get_registry
        registry = get_registry()
        print("gradium" in registry.names("stt"), "gradium" in registry.names("front"))
        try:
            registry.front("gradium")(None, None)
        except MissingDependency as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    names, error = result.stdout.splitlines()
    assert names == "True True"
    assert error == "this needs the 'starlette' package: pip install 'speechbridge[server]'"
