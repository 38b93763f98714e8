"""The one abstract base every registry backend implements.

A backend stores registrations, keeps health with Consul's semantics (TTL
checks fed by heartbeats, probe results with thresholds, deregister after a
time critical) and answers blocking queries: every change moves a
monotonically growing index, and :meth:`RegistryBackend.wait` holds until the
index of a scope moves past the caller's.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, Self, TypeVar

from registry.models import (
    AgentQuery,
    Health,
    Instance,
    Kind,
    Registration,
    ServiceSummary,
)

__all__ = ["BackendOptions", "Indexed", "RegistryBackend", "Scope"]

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    """What a blocking query watches: everything, one service, or one kind."""

    service: str | None = None
    kind: Kind | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @classmethod
    def of_kind(cls, kind: Kind) -> Scope:
        """Changes to instances of ``kind`` only (``/v1/agents`` watches agents)."""
        return cls(kind=kind)


@dataclass(frozen=True)
class BackendOptions:
    """What a backend may need to open its store; each takes what it uses."""

    #: File of a file-backed store (``sqlite``).
    data_path: Path = Path(".meshgate/registry.db")
    #: Backend-specific settings (for example a Consul address).
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Indexed(Generic[T]):
    """A read result together with the index it reflects."""

    index: int
    value: T
    #: Seconds the answering store has been unable to reach its source (a
    #: registry on Consul while Consul is down); 0 for a fresh answer.
    stale_seconds: float = 0.0


class RegistryBackend(abc.ABC):
    """Storage and health of registrations.

    ``owner`` arguments identify the credential that made a write (a key
    fingerprint) or ``None`` when the registry runs without keys. The first
    owner of a service holds it while the service has instances: a write by
    another owner is refused (:class:`~registry.errors.Conflict` on register,
    :class:`~registry.errors.Forbidden` on deregister and heartbeat).
    """

    #: The short name that selects this backend (``--backend NAME``).
    name: ClassVar[str]
    #: True when the store runs its own active checks (Consul's HTTP checks);
    #: otherwise the registry service probes instances and reports results.
    runs_own_checks: ClassVar[bool] = False

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        """Build the backend from generic options (``--backend NAME``)."""
        return cls()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open storage and start background work (TTL expiry and the like)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and release storage."""

    def staleness(self) -> float:
        """Seconds reads have been answered from a last known state (0 while current).

        A store that lives elsewhere (Consul) keeps serving reads when it cannot
        be reached; embedded stores are always current.
        """
        return 0.0

    @abc.abstractmethod
    async def register(
        self, service: str, instance: str, registration: Registration, *, owner: str | None
    ) -> tuple[Instance, bool]:
        """Store ``registration``; return the record and whether it is new."""

    @abc.abstractmethod
    async def deregister(self, service: str, instance: str, *, owner: str | None) -> None:
        """Remove an instance (:class:`~registry.errors.NotFound` if absent)."""

    @abc.abstractmethod
    async def get(self, service: str, instance: str) -> Instance:
        """One instance (:class:`~registry.errors.NotFound` if absent)."""

    @abc.abstractmethod
    async def heartbeat(
        self,
        service: str,
        instance: str,
        *,
        status: Health = Health.PASSING,
        note: str = "",
        owner: str | None,
    ) -> Instance:
        """Update the TTL check of an instance, as Consul's ``/v1/agent/check/update``."""

    @abc.abstractmethod
    async def record_probe(self, service: str, instance: str, *, ok: bool, output: str) -> None:
        """Report one active probe result; thresholds decide the probe check's state."""

    @abc.abstractmethod
    async def services(self) -> Indexed[list[ServiceSummary]]:
        """Every service with instance counts by health."""

    @abc.abstractmethod
    async def instances(
        self, service: str, *, passing_only: bool = False
    ) -> Indexed[list[Instance]]:
        """Instances of one service (an unknown service has none)."""

    @abc.abstractmethod
    async def agents(self, query: AgentQuery) -> Indexed[list[Instance]]:
        """Agent instances whose card matches ``query``."""

    @abc.abstractmethod
    async def all_instances(self) -> Indexed[list[Instance]]:
        """Every instance of every service."""

    @abc.abstractmethod
    def index(self, scope: Scope) -> int:
        """The current index of ``scope`` (always >= 1)."""

    @abc.abstractmethod
    async def wait(self, scope: Scope, index: int, max_wait: float) -> int:
        """Block until the index of ``scope`` differs from ``index`` or ``max_wait`` passes.

        Returns at once when ``index`` is 0 or no longer current (an index
        greater than the current one means the store went back: the caller
        must reset). Returns the index of ``scope`` at return time.
        """
