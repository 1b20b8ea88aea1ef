"""The voices a Gradium front offers, and which backend voice each one speaks with.

By default the catalogue is the backend's own voices (Gradium ids = backend ids) plus the voice ids that Gradium
clients use when none is given (the speechbridge, pipecat and livekit defaults), which speak with the backend's
default voice. A ``voices`` mapping replaces it: Gradium voice id -> backend voice (None: the backend's default).
Unknown voices are refused with code 1011, as Gradium does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import attrs

from speechbridge.tts import TTSProvider

from ..settings import DEFAULT_VOICE_ID
from .failures import INTERNAL, RequestError

__all__ = ["CLIENT_DEFAULT_VOICES", "CatalogVoice", "VoiceCatalog"]

CLIENT_DEFAULT_VOICES: Final = {
    DEFAULT_VOICE_ID: "Emma",  # speechbridge and Gradium's documentation
    "_6Aslh2DxfmnRLmP": "Pipecat default",
    "vjFyp2BcCyTlUmYb": "LiveKit default",
}


@attrs.frozen
class CatalogVoice:
    uid: str
    name: str
    backend_voice: str | None  # None: the backend's default voice
    language: str | None = None
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Gradium's ``APIVoiceResponse``."""
        return {
            "uid": self.uid,
            "name": self.name,
            "description": self.description,
            "language": self.language,
            "filename": None,
            "start_s": 0.0,
            "is_catalog": True,
            "is_pro_clone": False,
            "tags": [],
        }


class VoiceCatalog:
    """Lists voices and resolves a setup's ``voice_id`` / ``voice`` to a backend voice."""

    def __init__(self, tts: TTSProvider[Any] | None, voices: Mapping[str, str | None] | None = None) -> None:
        self._tts = tts
        self._mapping = dict(voices) if voices is not None else None
        self._voices: list[CatalogVoice] | None = None
        self._lock = asyncio.Lock()

    async def entries(self) -> list[CatalogVoice]:
        async with self._lock:
            if self._voices is None:
                self._voices = await self._load()
            return self._voices

    async def _load(self) -> list[CatalogVoice]:
        if self._mapping is not None:
            return [CatalogVoice(uid, uid, backend) for uid, backend in self._mapping.items()]
        if self._tts is None:
            return []
        own = [
            CatalogVoice(voice.id, voice.name, voice.id, voice.language, voice.description)
            for voice in await self._tts.voices()
        ]
        known = {voice.uid for voice in own}
        defaults = [
            CatalogVoice(uid, name, None, description="spoken by the backend's default voice")
            for uid, name in CLIENT_DEFAULT_VOICES.items()
            if uid not in known
        ]
        return own + defaults

    async def get(self, uid: str) -> CatalogVoice | None:
        return next((voice for voice in await self.entries() if voice.uid == uid), None)

    async def resolve(self, voice_id: str | None, voice: str | None) -> str | None:
        """The backend voice for a setup (None: the backend's default); an unknown voice is a :class:`RequestError`."""
        if voice_id is not None:
            found = await self.get(voice_id)
            if found is None:
                raise RequestError(INTERNAL, f"unknown voice {voice_id!r}: no voice has this voice_id")
            return found.backend_voice
        if voice is None or voice == "default":
            return None
        for candidate in await self.entries():
            if voice in (candidate.uid, candidate.name) or voice.casefold() == candidate.name.casefold():
                return candidate.backend_voice
        raise RequestError(INTERNAL, f"unknown voice {voice!r}: no voice has this name")
