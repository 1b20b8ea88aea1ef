"""What every provider shares: a name, typed settings and, where the vendor needs one, an API key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from .errors import ConfigError, remember_secret
from .reliability import Reliability
from .settings import build_settings

__all__ = ["Provider", "Secret"]

S = TypeVar("S")


@attrs.frozen(repr=False)
class Secret:
    """An API key or token; its repr and str never show the value."""

    value: str

    def __attrs_post_init__(self) -> None:
        remember_secret(self.value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class Provider(Generic[S]):
    """Base of STT and TTS providers.

    ``Settings`` is the provider's attrs class of options; options given to the constructor are its defaults, and
    each call (``transcribe``, ``stream``, ``synthesize``) may override them. ``reliability`` (a
    :class:`~speechbridge.reliability.Reliability` or a mapping of its options) sets retries, reconnects and timeouts.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[Any]]
    api_key_env: ClassVar[str | None] = None  # the environment variable the vendor's key is read from

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        reliability: Reliability | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.settings: S = build_settings(self.Settings, options, provider=self.name)
        if isinstance(api_key, str):
            api_key = Secret(api_key)
        self._api_key = api_key
        self.reliability = Reliability() if reliability is None else Reliability.from_options(reliability)

    def _settings_with(self, options: Mapping[str, Any]) -> S:
        """This provider's settings with per-call ``options`` applied and validated."""
        if not options:
            return self.settings
        settings: S = build_settings(self.Settings, options, provider=self.name, base=self.settings)
        return settings

    def _require_api_key(self) -> Secret:
        if self._api_key is None:
            where = f" (set {self.api_key_env})" if self.api_key_env else ""
            raise ConfigError(f"no API key{where}", provider=self.name)
        return self._api_key

    async def aclose(self) -> None:
        """Release pooled connections or loaded models."""

    async def __aenter__(self: P) -> P:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"


P = TypeVar("P", bound=Provider[Any])
