"""A wire-compatible Deepgram server (the ``deepgram`` front) whose speech is done by any provider."""

from __future__ import annotations

from .app import DeepgramFront, make_app

__all__ = ["DeepgramFront", "make_app"]
