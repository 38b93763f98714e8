"""Records of the registry: what is registered, and what the registry knows of it.

A *service* is a name (``researcher``); an *instance* is one running replica
(``researcher-7f3a``). Health uses Consul's words: ``passing``, ``warning``,
``critical``. Wire records are frozen pydantic models, so the HTTP service,
the client and every backend share one validated shape.
"""

from __future__ import annotations

import enum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "NAME_PATTERN",
    "AgentQuery",
    "CheckSpec",
    "CheckState",
    "Health",
    "HeartbeatBody",
    "Instance",
    "InstanceKey",
    "Kind",
    "Registration",
    "ServiceSummary",
]

#: Service and instance names: DNS labels, so they work as Consul service
#: names, Kubernetes names and hostnames alike.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MetaKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MetaValue = Annotated[str, StringConstraints(max_length=512)]

InstanceKey = tuple[str, str]
"""``(service, instance)``: the identity of an instance."""


class Health(enum.StrEnum):
    """Health of a check or an instance, ordered from best to worst."""

    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @classmethod
    def worst(cls, states: list[Health]) -> Health:
        """The aggregate of several checks is the worst of them (Consul's rule)."""
        return max(states, key=_SEVERITY.__getitem__, default=cls.PASSING)


_SEVERITY = {Health.PASSING: 0, Health.WARNING: 1, Health.CRITICAL: 2}


class Kind(enum.StrEnum):
    A2A_AGENT = "a2a-agent"
    MCP_SERVER = "mcp-server"


class _Frozen(BaseModel):
    """Input records: a field the registry does not know is a mistake worth naming."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _Reported(BaseModel):
    """Records the registry reports: clients ignore fields a newer registry adds."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class CheckSpec(_Frozen):
    """How the registry decides whether an instance is healthy.

    Every instance has a TTL check fed by its heartbeats. Unless
    ``interval_seconds`` is 0 the registry also probes it actively with its own
    protocol (A2A or MCP), which tells "registered" apart from "reachable".
    """

    ttl_seconds: float = Field(30.0, ge=0.1, le=86_400, description="Heartbeat TTL.")
    interval_seconds: float = Field(
        10.0, ge=0, le=3_600, description="Active probe interval; 0 turns the probe off."
    )
    timeout_seconds: float = Field(5.0, gt=0, le=120, description="Active probe timeout.")
    deregister_critical_after_seconds: float | None = Field(
        None,
        ge=0.1,
        le=30 * 86_400,
        description="Remove the instance once it has been critical this long; null keeps it.",
    )
    successes_before_passing: int = Field(1, ge=1, le=100)
    failures_before_critical: int = Field(3, ge=1, le=100)


class Registration(_Frozen):
    """The body of ``PUT /v1/services/{service}/instances/{instance}``."""

    kind: Kind
    url: str = Field(min_length=1, max_length=2_048, description="Base URL of the instance.")
    card: dict[str, Any] | None = Field(
        None, description="The A2A 1.0 Agent Card as JSON; required for agents."
    )
    tools: list[dict[str, Any]] | None = Field(
        None, max_length=1_000, description="The MCP tool list of the instance."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    meta: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=64)
    check: CheckSpec = Field(default_factory=CheckSpec)


class HeartbeatBody(_Frozen):
    """The optional body of a heartbeat: a TTL update like Consul's."""

    status: Health = Health.PASSING
    note: str = Field("", max_length=1_024)


class CheckState(_Reported):
    name: Literal["ttl", "probe"]
    status: Health
    output: str = ""


class Instance(_Reported):
    """A registered instance as the registry reports it."""

    service: Name
    id: Name
    kind: Kind
    url: str
    card: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)
    check: CheckSpec = Field(default_factory=CheckSpec)
    health: Health
    checks: list[CheckState] = Field(default_factory=list)
    create_index: int
    modify_index: int

    @property
    def key(self) -> InstanceKey:
        return (self.service, self.id)

    @cached_property
    def json_bytes(self) -> bytes:
        """The record as JSON, rendered once: list answers join these."""
        return self.model_dump_json().encode()

    @property
    def skills(self) -> list[str]:
        """Skill ids from the Agent Card (empty for tool servers)."""
        if not self.card:
            return []
        skills = self.card.get("skills") or []
        return [str(s.get("id")) for s in skills if isinstance(s, dict) and s.get("id")]


class ServiceSummary(_Reported):
    name: str
    kinds: list[Kind]
    instances: int
    passing: int
    warning: int
    critical: int


class AgentQuery(_Frozen):
    """Filters of ``GET /v1/agents``; empty fields match everything."""

    skill: str | None = None
    tag: str | None = None
    text: str | None = None
    passing_only: bool = False
