"""The optional libraries of the ``audio`` extra, imported on first use."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ..errors import MissingDependency

__all__ = ["numpy", "soundfile", "soxr"]


def _extra(module: str) -> Any:
    """Import a module of the ``audio`` extra, or say how to install it."""
    loaded = sys.modules.get(module)  # a dict look-up: conversions call this for every chunk of a live stream
    if loaded is not None:
        return loaded
    try:
        return importlib.import_module(module)
    except (ImportError, OSError):  # soundfile raises OSError when libsndfile itself is missing
        raise MissingDependency(module, "audio") from None


def numpy() -> Any:
    return _extra("numpy")


def soundfile() -> Any:
    return _extra("soundfile")


def soxr() -> Any:
    return _extra("soxr")
