"""What a Cartesia front answers when a request fails: a status, an ``error_code``, a title and a message."""

from __future__ import annotations

from typing import Final

import attrs

from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    ProviderError,
    QuotaExceeded,
    RateLimitError,
    SpeechBridgeError,
    UnsupportedFeature,
)

from .voices import VoiceNotFound

__all__ = ["Failure", "failure_of"]

TITLES: Final = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
}


@attrs.frozen
class Failure:
    status: int
    error_code: str
    message: str

    @property
    def title(self) -> str:
        return TITLES.get(self.status, "Error")

    def to_json(self) -> dict[str, str | None]:
        """The body of an HTTP error (API ``2026-03-01`` and later)."""
        return {"error_code": self.error_code, "title": self.title, "message": self.message, "request_id": None}


def failure_of(error: SpeechBridgeError) -> Failure:
    """The Cartesia error for a speechbridge error raised while serving a request."""
    message = error.message
    if isinstance(error, VoiceNotFound):
        return Failure(404, "voice_not_found", message)
    if isinstance(error, (AudioFormatError, ConfigError, UnsupportedFeature, ProtocolError)):
        return Failure(400, "invalid_request", message)
    if isinstance(error, AuthenticationError):
        return Failure(401, "unauthorized", message)
    if isinstance(error, RateLimitError):
        return Failure(429, "concurrency_limited", message)
    if isinstance(error, QuotaExceeded):
        return Failure(402, "insufficient_credits", message)
    if isinstance(error, InvalidRequest):
        code = error.code if isinstance(error.code, int) and 400 <= error.code < 500 else 400
        return Failure(code, "invalid_request", message)
    if isinstance(error, ProviderError):
        return Failure(500, "backend_error", message)
    return Failure(500, "internal_error", message)
