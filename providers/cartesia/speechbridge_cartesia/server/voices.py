"""The voices a Cartesia front offers, and which backend voice each one speaks with.

By default the catalogue is the backend's own voices (Cartesia ids = backend ids) plus the voice id speechbridge and
Cartesia's examples use, which speaks with the backend's default voice. A ``voices`` mapping replaces it: Cartesia
voice id -> backend voice (None: the backend's default). Unknown voices are refused with 404 ``voice_not_found``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from speechbridge.errors import InvalidRequest
from speechbridge.tts import TTSProvider, Voice

from ..protocol import PROVIDER
from ..settings import DEFAULT_VOICE_ID

__all__ = ["VoiceCatalog", "VoiceNotFound"]


class VoiceNotFound(InvalidRequest):
    """A request named a voice the front does not offer."""

    def __init__(self, voice_id: str) -> None:
        super().__init__(f"Voice {voice_id!r} not found", provider=PROVIDER, code=404)


class VoiceCatalog:
    """Lists voices and resolves a request's voice id to a backend voice."""

    def __init__(self, tts: TTSProvider[Any] | None, voices: Mapping[str, str | None] | None = None) -> None:
        self._tts = tts
        self._mapping = dict(voices) if voices is not None else None
        self._backend_voices: dict[str, Voice] = {}
        self._lock = asyncio.Lock()

    async def mapping(self) -> dict[str, str | None]:
        async with self._lock:
            if self._mapping is None:
                listed = await self._tts.voices() if self._tts is not None else []
                self._backend_voices = {voice.id: voice for voice in listed}
                self._mapping = {DEFAULT_VOICE_ID: None, **{voice.id: voice.id for voice in listed}}
        return self._mapping

    async def resolve(self, voice_id: str) -> str | None:
        """The backend voice for ``voice_id`` (None: the backend's default), or :class:`VoiceNotFound`."""
        mapping = await self.mapping()
        if voice_id not in mapping:
            raise VoiceNotFound(voice_id)
        return mapping[voice_id]

    async def to_json(self) -> list[dict[str, Any]]:
        """Cartesia voice objects."""
        voices = []
        for voice_id, backend in (await self.mapping()).items():
            known = self._backend_voices.get(backend or "")
            voices.append(
                {
                    "id": voice_id,
                    "name": known.name if known else backend or "default",
                    "description": (known.description if known else None) or f"speaks as {backend or 'the default'}",
                    "language": known.language if known else None,
                    "is_public": True,
                    "is_owner": False,
                }
            )
        return voices
