"""How mesh registrations map onto Consul, and back.

* One Consul service per mesh service; each instance is a service instance
  with ID ``{service}:{instance}`` (names are DNS labels, so ``:`` cannot occur
  in them), tagged ``meshgate`` plus its skills and tags, with small index
  fields in Meta (keys without dots: ``meshgate_kind``, ``meshgate_card_hash``).
* The whole registration (card or tool list, URL, tags, meta, check settings)
  and its owner live in KV at ``{prefix}/instances/{service}/{instance}``:
  Meta holds 64 short values, a KV value up to 512 KB.
* Checks: ``{id}:ttl`` fed by heartbeats, and ``{id}:probe``, an HTTP check on
  the instance's protocol (A2A: its Agent Card; MCP: a stateless
  ``tools/list``), both with ``DeregisterCriticalServiceAfter``.
* Markers ``{prefix}/instances/{service}/_changed`` and ``{prefix}/kinds/{kind}``
  are rewritten by every registration and deregistration, so the index of a
  service or of a kind moves when an instance goes, not only when one changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from registry.models import CheckState, Health, Instance, Kind, Registration

__all__ = [
    "MARKER",
    "KvItem",
    "Layout",
    "build_instance",
    "check_ids",
    "consul_status",
    "decode_record",
    "encode_record",
    "kv_delete",
    "kv_set",
    "service_id",
    "service_payload",
]

#: The marker key's last segment: ``_`` never starts an instance name.
MARKER = "_changed"
_MCP_VERSION = "2026-07-28"


@dataclass(frozen=True)
class Layout:
    """KV keys under one prefix."""

    prefix: str

    def instances(self, service: str | None = None) -> str:
        return f"{self.prefix}/instances/" + (f"{service}/" if service else "")

    def record(self, service: str, instance: str) -> str:
        return f"{self.prefix}/instances/{service}/{instance}"

    def marker(self, service: str) -> str:
        return f"{self.prefix}/instances/{service}/{MARKER}"

    def owner(self, service: str) -> str:
        return f"{self.prefix}/owners/{service}"

    def kind(self, kind: Kind) -> str:
        return f"{self.prefix}/kinds/{kind.value}"

    def split(self, key: str) -> tuple[str, str] | None:
        """``(service, instance)`` of a record or marker key, else ``None``."""
        head = self.instances()
        if not key.startswith(head):
            return None
        service, _, instance = key[len(head) :].partition("/")
        return (service, instance) if service and instance and "/" not in instance else None


@dataclass(frozen=True)
class KvItem:
    key: str
    value: bytes
    create_index: int
    modify_index: int

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> KvItem:
        value = raw.get("Value")
        data = value if isinstance(value, bytes) else base64.b64decode(value) if value else b""
        return cls(str(raw["Key"]), data, int(raw["CreateIndex"]), int(raw["ModifyIndex"]))


def service_id(service: str, instance: str) -> str:
    return f"{service}:{instance}"


def check_ids(service: str, instance: str) -> tuple[str, str]:
    sid = service_id(service, instance)
    return f"{sid}:ttl", f"{sid}:probe"


def consul_status(health: Health) -> str:
    return health.value  # Consul's words are ours


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _probe_check(reg: Registration) -> dict[str, Any]:
    check = reg.check
    spec: dict[str, Any] = {
        "Name": "probe",
        "Interval": _duration(check.interval_seconds),
        "Timeout": _duration(check.timeout_seconds),
        "SuccessBeforePassing": check.successes_before_passing,
        "FailuresBeforeCritical": check.failures_before_critical,
    }
    if reg.kind is Kind.A2A_AGENT:
        base = urlsplit(reg.url)._replace(query="", fragment="").geturl().rstrip("/") + "/"
        spec |= {
            "HTTP": urljoin(base, ".well-known/agent-card.json"),
            "Method": "GET",
            "Header": {"Accept": ["application/json"]},
        }
    else:
        meta = {
            "io.modelcontextprotocol/protocolVersion": _MCP_VERSION,
            "io.modelcontextprotocol/clientInfo": {"name": "consul-check", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        body = {"jsonrpc": "2.0", "id": "consul-check", "method": "tools/list"}
        spec |= {
            "HTTP": reg.url,
            "Method": "POST",
            "Header": {
                "Content-Type": ["application/json"],
                "Accept": ["application/json, text/event-stream"],
                "MCP-Protocol-Version": [_MCP_VERSION],
                "Mcp-Method": ["tools/list"],
            },
            "Body": json.dumps(body | {"params": {"_meta": meta}}),
        }
    return spec


def service_payload(
    service: str, instance: str, reg: Registration, status: Mapping[str, Health]
) -> dict[str, Any]:
    """Keyword arguments of py-consul's ``agent.service.register``.

    ``status`` holds the initial status of each check (``ttl``, ``probe``):
    re-registering the same endpoint keeps its health, as the other backends do.
    """
    url = urlsplit(reg.url)
    content = reg.card if reg.kind is Kind.A2A_AGENT else reg.tools
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    skills = [str(s.get("id")) for s in (reg.card or {}).get("skills") or [] if isinstance(s, dict)]
    tags = list(dict.fromkeys(["meshgate", *[s for s in skills if s], *reg.tags]))
    after = reg.check.deregister_critical_after_seconds
    ttl_id, probe_id = check_ids(service, instance)
    checks: list[dict[str, Any]] = [
        {
            "CheckID": ttl_id,
            "Name": "ttl",
            "TTL": _duration(reg.check.ttl_seconds),
            "Status": consul_status(status.get("ttl", Health.CRITICAL)),
        }
    ]
    if reg.check.interval_seconds > 0:
        probe = _probe_check(reg)
        probe |= {
            "CheckID": probe_id,
            "Status": consul_status(status.get("probe", Health.CRITICAL)),
        }
        checks.append(probe)
    if after is not None:
        for check in checks:
            check["DeregisterCriticalServiceAfter"] = _duration(after)
    return {
        "name": service,
        "service_id": service_id(service, instance),
        "address": url.hostname or "",
        "port": url.port or (443 if url.scheme == "https" else 80),
        "tags": tags,
        "meta": {
            "meshgate_kind": reg.kind.value,
            "meshgate_instance": instance,
            "meshgate_card_hash": digest,
        },
        "check": checks[0],
        "extra_checks": checks[1:],
        "replace_existing_checks": True,
    }


def encode_record(reg: Registration, owner: str | None) -> bytes:
    return json.dumps({"registration": reg.model_dump(mode="json"), "owner": owner}).encode()


def decode_record(value: bytes) -> tuple[Registration, str | None]:
    data = json.loads(value)
    owner = data.get("owner")
    return Registration.model_validate(data["registration"]), owner if owner else None


def _health(status: object) -> Health:
    # "maintenance" (and anything unknown) counts as critical, as Consul's ?passing does.
    try:
        return Health(str(status))
    except ValueError:
        return Health.CRITICAL


def build_instance(
    service: str, instance: str, item: KvItem, checks: list[dict[str, Any]]
) -> Instance:
    """The mesh record of an instance from its KV item and its Consul checks."""
    reg, _ = decode_record(item.value)
    ttl_id, probe_id = check_ids(service, instance)
    states = []
    modify = item.modify_index
    for check in sorted(checks, key=lambda c: str(c.get("CheckID"))):
        cid = check.get("CheckID")
        modify = max(modify, int(check.get("ModifyIndex") or 0))
        if cid in (ttl_id, probe_id):
            name = "ttl" if cid == ttl_id else "probe"
            states.append(
                CheckState(
                    name=name,
                    status=_health(check.get("Status")),
                    output=str(check.get("Output") or ""),
                )
            )
    states.sort(key=lambda c: c.name != "ttl")
    health = Health.worst([c.status for c in states]) if states else Health.CRITICAL
    return Instance(
        service=service,
        id=instance,
        kind=reg.kind,
        url=reg.url,
        card=reg.card,
        tools=reg.tools,
        tags=reg.tags,
        meta=reg.meta,
        check=reg.check,
        health=health,
        checks=states,
        create_index=item.create_index,
        modify_index=modify,
    )


def kv_set(key: str, value: bytes) -> dict[str, Any]:
    """A ``set`` operation of ``/v1/txn``."""
    return {"KV": {"Verb": "set", "Key": key, "Value": base64.b64encode(value).decode()}}


def kv_delete(key: str, *, cas: int | None = None) -> dict[str, Any]:
    """A ``delete`` (or, with ``cas``, ``delete-cas``) operation of ``/v1/txn``."""
    if cas is None:
        return {"KV": {"Verb": "delete", "Key": key}}
    return {"KV": {"Verb": "delete-cas", "Key": key, "Index": cas}}
