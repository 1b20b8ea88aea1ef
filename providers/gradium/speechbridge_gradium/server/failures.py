"""How a Gradium front reports failures: one close code and one message, whatever went wrong."""

from __future__ import annotations

from typing import Final

from speechbridge.errors import (
    AudioFormatError,
    AuthenticationError,
    ConfigError,
    ProviderError,
    QuotaExceeded,
    SpeechBridgeError,
    UnsupportedFeature,
)

__all__ = ["INTERNAL", "POLICY", "RequestError", "close_code_for"]

POLICY: Final = 1008  # auth, malformed or missing setup, invalid settings or audio
INTERNAL: Final = 1011  # the backend failed; retrying may help


class RequestError(Exception):
    """A request cannot go on: the client gets ``{"type":"error","message":..,"code":..}`` and the close code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_error(cls, error: BaseException) -> RequestError:
        if isinstance(error, RequestError):
            return error
        message = error.message if isinstance(error, SpeechBridgeError) else f"internal error: {error!r}"
        return cls(close_code_for(error), message)


def close_code_for(error: BaseException) -> int:
    """The Gradium close code for an error raised by a backend provider."""
    if isinstance(error, ProviderError) and isinstance(error.code, int) and 1000 <= error.code <= 4999:
        return error.code
    if isinstance(error, (AuthenticationError, QuotaExceeded, ConfigError, AudioFormatError, UnsupportedFeature)):
        return POLICY
    if isinstance(error, ProviderError) and not error.retryable:
        return POLICY
    return INTERNAL
