"""The hook implementation of the scripted providers, and a registry that holds them.

This module is not an entry point: test doubles stay out of the registry of an installed speechbridge, and tests
ask for them with :func:`scripted_registry`.
"""

from __future__ import annotations

import sys

from ..hookspecs import hookimpl
from ..plugins import ProviderRegistry, build_registry, plugin_manager
from .scripted import ScriptedSTT, ScriptedTTS

__all__ = ["scripted_registry", "speechbridge_register_providers"]


@hookimpl
def speechbridge_register_providers(registry: ProviderRegistry) -> None:
    registry.add_stt(ScriptedSTT)
    registry.add_tts(ScriptedTTS)


def scripted_registry(*, load_entrypoints: bool = True) -> ProviderRegistry:
    """A registry of the installed backends (unless ``load_entrypoints`` is False) plus the scripted providers."""
    return build_registry(plugin_manager(load_entrypoints=load_entrypoints, plugins=[sys.modules[__name__]]))
