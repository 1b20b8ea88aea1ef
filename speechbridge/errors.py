"""The exceptions speechbridge raises.

Every error is a :class:`SpeechBridgeError` and says whether retrying may help (``retryable``)::

    SpeechBridgeError
    ├── ConfigError              unknown provider, option, key or value; ``allowed`` lists what is accepted
    │   └── MissingDependency    an optional extra is not installed
    ├── AudioFormatError         empty, truncated, corrupt or unsupported audio
    ├── UnsupportedFeature       the provider cannot do what was asked
    ├── StreamClosed             a stream was used after ``end()`` / ``aclose()``
    ├── ProviderError            the vendor refused the request (``code`` is the vendor's own)
    │   ├── AuthenticationError  bad, missing, revoked or expired key or token
    │   ├── RateLimitError       too many requests; ``retry_after`` seconds when the vendor says
    │   ├── QuotaExceeded        out of credits or over a concurrency/usage cap
    │   └── InvalidRequest       the vendor rejected a setting, voice, model or payload
    │       └── UnknownVoice     the vendor does not know the voice (also a ConfigError: fix the setting)
    ├── TransportError           the connection failed, dropped or timed out (retryable)
    └── ProtocolError            the peer sent something the protocol does not allow
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

__all__ = [
    "AudioFormatError",
    "AuthenticationError",
    "ConfigError",
    "InvalidRequest",
    "MissingDependency",
    "ProtocolError",
    "ProviderError",
    "QuotaExceeded",
    "RateLimitError",
    "SpeechBridgeError",
    "StreamClosed",
    "TransportError",
    "UnknownVoice",
    "UnsupportedFeature",
    "remember_secret",
]


MAX_REMEMBERED_SECRETS: Final = 4096
MIN_SECRET_LENGTH: Final = 8
_secrets: collections.OrderedDict[str, None] = collections.OrderedDict()


def remember_secret(value: str) -> None:
    """Mask ``value`` (a key or token of this process) in every error message made from now on.

    :class:`~speechbridge.provider.Secret` calls it, so a server that echoes a key into an answer quoted by an error
    never shows it. The newest ``MAX_REMEMBERED_SECRETS`` are kept; values shorter than ``MIN_SECRET_LENGTH`` are not
    secrets worth masking (and masking them would garble messages).
    """
    if len(value) < MIN_SECRET_LENGTH:
        return
    for form in {value, quote(value, safe=""), quote_plus(value)}:
        _secrets[form] = None
        _secrets.move_to_end(form)
    while len(_secrets) > MAX_REMEMBERED_SECRETS:
        _secrets.popitem(last=False)


def _masked(message: str) -> str:
    for secret in reversed(_secrets):
        if secret in message:
            message = message.replace(secret, "***")
    return message


class SpeechBridgeError(Exception):
    """Base of every speechbridge error. Its message never shows a key or token the process knows as a secret."""

    retryable: bool = False

    def __init__(self, message: str, *, provider: str | None = None, retryable: bool | None = None) -> None:
        message = _masked(message) if _secrets else message
        super().__init__(message)
        self.message = message
        self.provider = provider
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message


class ConfigError(SpeechBridgeError):
    """A provider, option, key or value is unknown or invalid."""

    def __init__(
        self,
        message: str,
        *,
        allowed: Iterable[object] | None = None,
        provider: str | None = None,
    ) -> None:
        self.allowed = tuple(allowed) if allowed is not None else None
        if self.allowed is not None:
            message = f"{message} (allowed: {', '.join(map(str, self.allowed)) or 'none'})"
        super().__init__(message, provider=provider)


class MissingDependency(ConfigError):
    """An optional library is needed; the message names the extra that installs it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"this needs the {module!r} package: pip install 'speechbridge[{extra}]'")
        self.module = module
        self.extra = extra


class AudioFormatError(SpeechBridgeError):
    """Audio is empty, truncated, corrupt, or in a format that is not accepted."""


class UnsupportedFeature(SpeechBridgeError):
    """The provider has no way to honour an option or operation."""


class StreamClosed(SpeechBridgeError):
    """A stream was used after it was ended or closed."""


class ProviderError(SpeechBridgeError):
    """The vendor answered with an error; ``code`` is its own status or close code."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        code: int | str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, provider=provider, retryable=retryable)
        self.code = code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} [code {self.code}]" if self.code is not None else text


class AuthenticationError(ProviderError):
    """The key or token is missing, invalid, revoked or expired."""


class RateLimitError(ProviderError):
    """Too many requests; wait ``retry_after`` seconds (when known) and try again."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        code: int | str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.retry_after = retry_after


class QuotaExceeded(ProviderError):
    """Out of credits, or over a concurrency or usage limit."""


class InvalidRequest(ProviderError):
    """The vendor rejected a setting, voice, model or payload."""


class UnknownVoice(InvalidRequest, ConfigError):
    """The vendor refused the request (``InvalidRequest``) because the voice setting names no voice it has
    (``ConfigError``)."""

    def __init__(self, message: str, *, provider: str | None = None, code: int | str | None = None) -> None:
        SpeechBridgeError.__init__(self, message, provider=provider)
        self.code = code
        self.allowed = None


class TransportError(SpeechBridgeError):
    """Connecting failed, the connection dropped, or the peer went silent."""

    retryable = True


class ProtocolError(SpeechBridgeError):
    """The peer sent a message the protocol does not allow."""
