"""What STT and TTS failover share: the chain's members and their health, which failures move on, per-call options,
and the relay that carries a live stream from one member's stream to the next."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, TypeVar

import attrs
from attrs import AttrsInstance

from ..errors import (
    AuthenticationError,
    ConfigError,
    ProtocolError,
    QuotaExceeded,
    SpeechBridgeError,
    TransportError,
    UnsupportedFeature,
)
from ..provider import Provider
from ..reliability import Reliability, is_retryable
from ..settings import COMMON_OPTIONS, between, build_settings, settings_fields
from ..streams import EventStream

__all__ = [
    "FAILOVER_OPTIONS",
    "AllProvidersFailed",
    "Attempt",
    "Chain",
    "FailoverSettings",
    "Members",
    "Relay",
    "Relayed",
    "common_capabilities",
    "first_success",
    "forward_options",
    "is_failover_reason",
]

log = logging.getLogger("speechbridge.fallback")

FAILOVER_OPTIONS: Final = ("no_output_timeout_s", "probe_interval_s")
"""The options of a chain itself (the rest go to its members)."""

P = TypeVar("P", bound=Provider[Any])
M = TypeVar("M", bound=EventStream[Any])
T = TypeVar("T")
C = TypeVar("C", bound=AttrsInstance)


def is_failover_reason(error: BaseException) -> bool:
    """Whether a provider's failure sends the work to the next provider of the chain.

    Retryable failures (dropped or refused connections, rate limits, server faults), a bad or exhausted account
    (:class:`AuthenticationError`, :class:`QuotaExceeded`) and a peer that breaks its protocol are the provider's
    problem. Errors about the request itself (audio, options, voice, an unknown model) would fail anywhere: they are
    raised at once.
    """
    return is_retryable(error) or isinstance(error, (AuthenticationError, QuotaExceeded, ProtocolError))


class AllProvidersFailed(SpeechBridgeError):
    """Every provider of a fallback chain failed; ``failures`` pairs each provider's name with its error, in the order
    they were tried. Retryable when every failure was."""

    def __init__(self, kind: str, failures: Sequence[tuple[str, SpeechBridgeError]]) -> None:
        self.failures = tuple(failures)
        detail = "; ".join(error_text(name, error) for name, error in self.failures)
        retryable = bool(self.failures) and all(error.retryable for _, error in self.failures)
        super().__init__(f"every {kind} provider of the fallback chain failed: {detail}", retryable=retryable)


def error_text(name: str, error: SpeechBridgeError) -> str:
    """One line naming the provider and what went wrong (errors never carry keys)."""
    return str(error) if error.provider else f"{name}: {error}"


@attrs.frozen
class FailoverSettings:
    """A chain's own settings; ``per_provider`` holds one call's options for each member, in chain order."""

    no_output_timeout_s: float = attrs.field(default=10.0, validator=between(0.01, 3600))
    probe_interval_s: float = attrs.field(default=30.0, validator=between(0.01, 86400))
    per_provider: tuple[Mapping[str, Any], ...] = ()


def _accepted_names(provider: Provider[Any]) -> set[str]:
    settings = type(provider).Settings
    return set(settings_fields(settings)) | set(getattr(settings, "ALIASES", {}))


def forward_options(
    providers: Sequence[Provider[Any]],
    common: Mapping[str, Any],
    specific: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], ...]:
    """Each member's options for one call, validated now: the common options go to every member that has them (one
    that none has is an error), and ``specific[name]`` only to the members called ``name``."""
    for key in common:
        if key not in COMMON_OPTIONS:
            raise ConfigError(
                f"unknown option {key!r} for a fallback chain, which passes on only the common options "
                "(give other options to each provider when making it)",
                allowed=sorted(COMMON_OPTIONS),
            )
    per_provider = []
    for provider in providers:
        names = _accepted_names(provider)
        options = {key: value for key, value in common.items() if key in names}
        options.update((specific or {}).get(provider.name, {}))
        build_settings(type(provider).Settings, options, provider=provider.name, base=provider.settings)
        per_provider.append(options)
    for key in common:
        if not any(key in options for options in per_provider):
            raise UnsupportedFeature(f"no provider of the fallback chain has the option {key!r}")
    return tuple(per_provider)


def common_capabilities(capabilities: Sequence[C]) -> C:
    """What every member can do: a flag when all have it; of a list, what all declared lists hold."""
    first = capabilities[0]
    values: dict[str, Any] = {}
    for field in attrs.fields(type(first)):
        mine = [getattr(each, field.name) for each in capabilities]
        if isinstance(mine[0], bool):
            values[field.name] = all(mine)
        else:
            declared = [value for value in mine if value] or [()]  # an empty list declares nothing
            values[field.name] = tuple(item for item in declared[0] if all(item in value for value in declared))
    return type(first)(**values)


class Chain(Provider[FailoverSettings], Generic[P, C]):
    """What :class:`~speechbridge.fallback.FallbackSTT` and ``FallbackTTS`` share: their members in order, the
    capabilities all of them have, the member serving new requests, and closing them all.

    Subclasses set ``kind`` ("stt" or "tts"), ``member_type`` and ``_probe`` (a small real request to a member).
    """

    name: ClassVar[str] = "fallback"
    Settings: ClassVar[type[Any]] = FailoverSettings
    kind: ClassVar[str]
    member_type: ClassVar[type[Provider[Any]]]

    def __init__(
        self,
        providers: Sequence[P],
        *,
        no_output_timeout_s: float = 10.0,
        probe_interval_s: float = 30.0,
        reliability: Reliability | Mapping[str, Any] | None = None,
    ) -> None:
        members = tuple(providers)
        if not members or not all(isinstance(member, self.member_type) for member in members):
            raise ConfigError(
                f"{type(self).__name__} takes a non-empty list of {self.kind.upper()} providers, not {providers!r}"
            )
        super().__init__(
            reliability=reliability, no_output_timeout_s=no_output_timeout_s, probe_interval_s=probe_interval_s
        )
        self.members: Members[P] = Members(self.kind, members, self._probe, self.settings)
        self._capabilities: C = common_capabilities([member.capabilities for member in members])  # type: ignore[attr-defined]

    @abc.abstractmethod
    async def _probe(self, provider: P) -> None:
        """A small real request to ``provider``: a failed member serves again once this succeeds."""

    @property
    def capabilities(self) -> C:
        """What every provider of the chain can do, so a request behaves the same whichever serves it."""
        return self._capabilities

    @property
    def providers(self) -> tuple[P, ...]:
        return self.members.providers

    @property
    def active(self) -> P:
        """The provider new requests go to first."""
        return self.members.active

    async def aclose(self) -> None:
        await self.members.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(member.name for member in self.providers)}])"


class Members(Generic[P]):
    """A chain's providers in order of preference, which of them are up, and the probes that bring failed ones back.

    A provider that fails is down: requests try it only after all the others. Every ``probe_interval_s`` a probe
    (``probe(provider)``, a small real request) checks it; once one succeeds it is up again and, being earlier in the
    chain, serves new requests.
    """

    def __init__(
        self, kind: str, providers: Iterable[P], probe: Callable[[P], Awaitable[None]], settings: FailoverSettings
    ) -> None:
        self.kind = kind
        self.providers = tuple(providers)
        self._probe = probe
        self._settings = settings
        self._up = [True] * len(self.providers)
        self._probes: dict[int, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def active(self) -> P:
        """The provider new requests go to first."""
        return self.providers[self.order()[0]]

    def order(self) -> list[int]:
        """Member indexes in the order to try them: those up in chain order, then those down."""
        indexes = range(len(self.providers))
        return [i for i in indexes if self._up[i]] + [i for i in indexes if not self._up[i]]

    def failed(self, index: int, error: SpeechBridgeError) -> None:
        """Member ``index`` failed: it is down, and a probe watches for its return."""
        if self._up[index]:
            self._up[index] = False
            name = self.providers[index].name
            log.info("%s fallback: %s; new requests go to %s", self.kind, error_text(name, error), self.active.name)
        if not self._closed and index not in self._probes:
            self._probes[index] = asyncio.get_running_loop().create_task(self._recover(index))

    def served(self, index: int) -> None:
        """Member ``index`` served a request: it is up."""
        if not self._up[index]:
            self._back(index, "served a request")
            probe = self._probes.pop(index, None)
            if probe is not None:
                probe.cancel()

    def _back(self, index: int, how: str) -> None:
        self._up[index] = True
        log.info(
            "%s fallback: %s is back (%s); new requests go to %s",
            self.kind,
            self.providers[index].name,
            how,
            self.active.name,
        )

    async def _recover(self, index: int) -> None:
        provider = self.providers[index]
        timeout = self._settings.no_output_timeout_s + 1.0  # a probe is about a second of speech at most
        try:
            while True:
                await asyncio.sleep(self._settings.probe_interval_s)
                try:
                    await asyncio.wait_for(self._probe(provider), timeout)
                except Exception as error:  # any failure of a probe means "still down"
                    log.debug("%s fallback: probe of %s failed: %r", self.kind, provider.name, error)
                    continue
                self._back(index, "probe succeeded")
                return
        finally:
            if self._probes.get(index) is asyncio.current_task():
                del self._probes[index]

    async def aclose(self) -> None:
        """Stop the probes and close every provider."""
        self._closed = True
        probes = list(self._probes.values())
        for probe in probes:
            probe.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        results = await asyncio.gather(*(provider.aclose() for provider in self.providers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def first_success(members: Members[P], call: Callable[[P, int], Awaitable[T]], timeout_s: float) -> T:
    """``call(provider, index)`` on each member in turn until one answers within ``timeout_s``; a failure that is not
    a failover reason is raised at once, and when every member failed, :class:`AllProvidersFailed` lists why."""
    failures: list[tuple[str, SpeechBridgeError]] = []
    for index in members.order():
        provider = members.providers[index]
        error: SpeechBridgeError
        try:
            result = await asyncio.wait_for(call(provider, index), timeout_s)
        except TimeoutError:
            error = TransportError(f"answered nothing within {timeout_s:.1f} s", provider=provider.name)
        except SpeechBridgeError as caught:
            if not is_failover_reason(caught):
                raise
            error = caught
        else:
            members.served(index)
            return result
        failures.append((provider.name, error))
        members.failed(index, error)
    raise AllProvidersFailed(members.kind, failures) from failures[-1][1]


@attrs.define
class Attempt(Generic[M]):
    """One member's stream serving a fallback stream; its events' times start at ``offset_s`` of the stream's."""

    index: int
    name: str
    stream: M
    offset_s: float
    waiting_since: float | None = None  # since when an answer is due and none came

    def arm(self) -> None:
        """An answer is now due (voiced audio, a flush or the end was sent)."""
        if self.waiting_since is None:
            self.waiting_since = asyncio.get_running_loop().time()

    def answered(self, *, still_due: bool) -> None:
        """The member answered; with a flush or the end outstanding, the next answer is due from now."""
        self.waiting_since = asyncio.get_running_loop().time() if still_due else None


class Relay(Generic[M]):
    """Serves a fallback stream through one member stream at a time, moving on when one fails.

    ``open_stream(index)`` makes member ``index``'s (unopened) stream. Each member is tried at most once per stream.
    While an answer is due, a member has ``timeout_s`` to give one (the no-output watchdog).
    """

    def __init__(self, members: Members[Any], open_stream: Callable[[int], M], timeout_s: float) -> None:
        self.members = members
        self.timeout_s = timeout_s
        self._open_stream = open_stream
        self._tried: set[int] = set()
        self._failures: list[tuple[str, SpeechBridgeError]] = []
        self.attempt: Attempt[M] | None = None

    async def connect(self, offset_s: float) -> Attempt[M]:
        """Open the stream of the next member not tried yet, in the chain's current order."""
        for index in self.members.order():
            if index in self._tried:
                continue
            self._tried.add(index)
            name = self.members.providers[index].name
            stream = self._open_stream(index)
            error: SpeechBridgeError
            try:
                await asyncio.wait_for(stream.open(), self.timeout_s)
            except TimeoutError:
                error = TransportError(f"did not open within {self.timeout_s:g} s (no_output_timeout_s)", provider=name)
                await stream.aclose()
            except SpeechBridgeError as caught:
                if not is_failover_reason(caught):
                    raise
                error = caught
            else:
                self.attempt = Attempt(index, name, stream, offset_s)
                return self.attempt
            self._failures.append((name, error))
            self.members.failed(index, error)
        raise AllProvidersFailed(self.members.kind, self._failures) from self._failures[-1][1]

    async def run(
        self,
        serve: Callable[[Attempt[M]], Awaitable[None]],
        offset_s: Callable[[], float],
        switched: Callable[[Attempt[M], Attempt[M], SpeechBridgeError], None],
    ) -> None:
        """``serve`` the current attempt; when it fails over, retire it, connect the next member at ``offset_s()``
        and report the ``switched(old, new, error)``."""
        assert self.attempt is not None
        while True:
            attempt = self.attempt
            try:
                await serve(attempt)
            except SpeechBridgeError as error:
                if not is_failover_reason(error):
                    raise
                self._failures.append((attempt.name, error))
                self.members.failed(attempt.index, error)
                await attempt.stream.aclose()
                switched(attempt, await self.connect(offset_s()), error)
                continue
            self.members.served(attempt.index)
            return

    async def serve(
        self,
        attempt: Attempt[M],
        pump: Callable[[Attempt[M]], Coroutine[Any, Any, None]],
        send: Callable[[Attempt[M]], Coroutine[Any, Any, None]],
    ) -> None:
        """Run ``pump`` (the member's events, until it ends), ``send`` (the caller's input) and the watchdog together;
        the first failure stops all three and is raised."""
        tasks = [asyncio.create_task(work(attempt)) for work in (pump, send, self._watch)]
        try:
            pending = set(tasks)
            while not tasks[0].done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    failure = task.exception()
                    if failure is not None:
                        raise failure
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self, attempt: Attempt[M]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            since = attempt.waiting_since
            if since is None:
                await asyncio.sleep(self.timeout_s / 8)
                continue
            left = since + self.timeout_s - loop.time()
            if left <= 0:
                raise TransportError(f"answered nothing for {self.timeout_s:g} s", provider=attempt.name)
            await asyncio.sleep(left)


class Relayed(abc.ABC, Generic[M]):
    """What the fallback STT and TTS streams share: the caller's input goes through ``_outbox`` to the task that
    ``_deliver``-s it to the serving member, whose events ``_receive`` takes; ``_relay`` knows which member serves."""

    _relay: Relay[M]
    _outbox: asyncio.Queue[Any]  # the caller's input, a flush id, None: the end

    @property
    def active(self) -> str | None:
        """The name of the provider serving this stream."""
        return self._relay.attempt.name if self._relay.attempt is not None else None

    async def _close(self) -> None:
        if self._relay.attempt is not None:
            await self._relay.attempt.stream.aclose()

    async def _send_flush(self, flush_id: int) -> None:
        self._outbox.put_nowait(flush_id)

    async def _send_end(self) -> None:
        self._outbox.put_nowait(None)

    async def _serve(self, attempt: Attempt[M]) -> None:
        await self._relay.serve(attempt, self._receive, self._deliver)

    @abc.abstractmethod
    async def _deliver(self, attempt: Attempt[M]) -> None:
        """Send the serving member what it needs to take over, then the caller's input as it comes."""

    @abc.abstractmethod
    async def _receive(self, attempt: Attempt[M]) -> None:
        """Pass the serving member's events on, until it ends."""
