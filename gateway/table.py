"""The route table: an immutable snapshot of where every service can be reached.

Built from one registry watch and swapped whole, so a request reads one
consistent table with no lock and no registry call. Only facts live here;
per-request state (in flight, ejections) lives in :mod:`gateway.upstreams`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from registry.models import Health, Instance, InstanceKey, Kind

__all__ = ["ROUTABLE", "Route", "RouteTable"]

#: Registry health states the gateway sends traffic to (warning: less of it).
ROUTABLE = frozenset((Health.PASSING, Health.WARNING))


@dataclass(frozen=True, slots=True)
class Route:
    """One instance, as the router needs it."""

    key: InstanceKey
    kind: Kind
    health: Health
    #: The instance's base URL (``scheme://host:port/path/``, trailing slash).
    base_url: str
    #: ``(host, port)`` the hot-path client connects to.
    origin: tuple[str, int]
    #: Agents: the URL of the card's JSON-RPC interface; tool servers: the MCP URL.
    endpoint: str
    #: The request target (path and query) of ``endpoint``, ready for the wire.
    endpoint_target: bytes
    #: The path of ``base_url`` (ends with ``/``): other paths are relative to it.
    base_path: str
    skills: frozenset[str] = frozenset()
    card: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()

    @property
    def service(self) -> str:
        return self.key[0]

    @property
    def routable(self) -> bool:
        return self.health in ROUTABLE

    @classmethod
    def from_instance(cls, instance: Instance) -> Route:
        base = instance.url if instance.url.endswith("/") else instance.url + "/"
        endpoint = instance.url
        if instance.kind is Kind.A2A_AGENT:
            endpoint = _jsonrpc_interface(instance.card or {}, base)
        parts = urlsplit(base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = urlsplit(endpoint)
        endpoint_target = (target.path or "/") + (f"?{target.query}" if target.query else "")
        return cls(
            key=instance.key,
            kind=instance.kind,
            health=instance.health,
            base_url=base,
            origin=(parts.hostname or "", port),
            endpoint=endpoint,
            endpoint_target=endpoint_target.encode(),
            base_path=parts.path or "/",
            skills=frozenset(instance.skills),
            card=instance.card,
            tools=tuple(instance.tools or ()),
        )


def _jsonrpc_interface(card: Mapping[str, Any], base: str) -> str:
    # Only an interface on the instance's own origin: the card is the agent's
    # word, the registered URL is what the registry checked.
    origin = urlsplit(base)[:2]
    for interface in card.get("supportedInterfaces") or []:
        if not isinstance(interface, Mapping):
            continue
        url = str(interface.get("url", ""))
        if interface.get("protocolBinding") == "JSONRPC" and urlsplit(url)[:2] == origin:
            return url
    return base


@dataclass(frozen=True)
class RouteTable:
    """Every instance the registry reported at ``index``, grouped for routing."""

    index: int
    loaded_at: float
    services: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)
    skills: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)
    #: The routable subsets, computed once: every request asks for them.
    routable_services: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)
    routable_skills: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> RouteTable:
        return cls(index=0, loaded_at=0.0)

    @classmethod
    def build(
        cls, instances: Iterable[Instance], index: int, *, now: float | None = None
    ) -> RouteTable:
        services: dict[str, list[Route]] = {}
        skills: dict[str, list[Route]] = {}
        for instance in instances:
            route = Route.from_instance(instance)
            services.setdefault(route.service, []).append(route)
            if route.kind is Kind.A2A_AGENT:
                for skill in route.skills:
                    skills.setdefault(skill, []).append(route)

        def routable(groups: dict[str, list[Route]]) -> Mapping[str, tuple[Route, ...]]:
            return MappingProxyType(
                {k: tuple(r for r in v if r.routable) for k, v in groups.items()}
            )

        return cls(
            index=index,
            loaded_at=time.monotonic() if now is None else now,
            services=MappingProxyType({k: tuple(v) for k, v in services.items()}),
            skills=MappingProxyType({k: tuple(v) for k, v in skills.items()}),
            routable_services=routable(services),
            routable_skills=routable(skills),
        )

    @property
    def loaded(self) -> bool:
        return self.loaded_at > 0

    def routes(self, service: str) -> tuple[Route, ...]:
        """Routable instances of ``service`` (passing or warning)."""
        return self.routable_services.get(service, ())

    def by_skill(self, skill: str) -> tuple[Route, ...]:
        """Routable agent instances that offer ``skill``."""
        return self.routable_skills.get(skill, ())

    def card(self, service: str) -> Mapping[str, Any] | None:
        """The card of a routable instance of ``service`` (replicas share one card)."""
        for route in self.routes(service) or self.services.get(service, ()):
            if route.card is not None:
                return route.card
        return None

    def keys(self) -> set[InstanceKey]:
        return {r.key for routes in self.services.values() for r in routes}

    def age(self, now: float | None = None) -> float:
        """Seconds since this table was loaded (stale tables keep serving)."""
        return (time.monotonic() if now is None else now) - self.loaded_at
