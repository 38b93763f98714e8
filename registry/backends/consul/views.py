"""Read models of the ``consul`` backend: what one or all services look like.

Indexes of a service and of a kind are derived from the data alone (the
greatest ``ModifyIndex`` of its records, checks and marker), so every registry
process over one Consul computes the same ones and holds no state of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from registry.backends.consul.mapping import (
    MARKER,
    KvItem,
    Layout,
    build_instance,
    decode_record,
    service_id,
)
from registry.models import AgentQuery, Health, Instance, InstanceKey, Kind, ServiceSummary

__all__ = ["Snapshot", "matches", "summaries"]


@dataclass(frozen=True)
class Snapshot:
    """Instances read from Consul, with the indexes of the scopes they cover."""

    index: int
    instances: list[Instance]
    owners: dict[InstanceKey, str | None]
    services: dict[str, int] = field(default_factory=dict)
    kinds: dict[Kind, int] = field(default_factory=dict)
    #: KV records whose Consul service is gone (reaped by Consul): ``(service, instance) -> item``.
    orphans: dict[InstanceKey, KvItem] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        layout: Layout,
        index: int,
        items: Iterable[dict[str, Any]],
        checks: Iterable[dict[str, Any]],
        *,
        present: set[str] | None = None,
    ) -> Snapshot:
        """Join KV items and checks; ``present`` lists the service IDs Consul has.

        Without ``present`` a service counts as present when it has checks
        (every instance has a TTL check).
        """
        by_sid: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for check in checks:
            if check.get("ServiceID"):
                by_sid[str(check["ServiceID"])].append(check)
        present = set(by_sid) if present is None else present
        services: dict[str, int] = {}
        kinds: dict[Kind, int] = {}
        records: dict[InstanceKey, KvItem] = {}
        kind_head = f"{layout.prefix}/kinds/"
        for raw in items:
            item = KvItem.parse(raw)
            if item.key.startswith(kind_head):
                kind = _kind(item.key[len(kind_head) :])
                if kind is not None:
                    kinds[kind] = max(kinds.get(kind, 1), item.modify_index)
                continue
            key = layout.split(item.key)
            if key is None:
                continue
            if key[1] == MARKER:
                services[key[0]] = max(services.get(key[0], 1), item.modify_index)
            else:
                records[key] = item
        instances: list[Instance] = []
        owners: dict[InstanceKey, str | None] = {}
        orphans: dict[InstanceKey, KvItem] = {}
        for key in sorted(records):
            sid = service_id(*key)
            if sid not in present:
                orphans[key] = records[key]
                continue
            instance = build_instance(*key, records[key], by_sid.get(sid, []))
            instances.append(instance)
            owners[key] = decode_record(records[key].value)[1]
            services[key[0]] = max(services.get(key[0], 1), instance.modify_index)
            kinds[instance.kind] = max(kinds.get(instance.kind, 1), instance.modify_index)
        return cls(max(index, 1), instances, owners, services, kinds, orphans)

    def service_index(self, service: str) -> int:
        return self.services.get(service, 1)

    def kind_index(self, kind: Kind) -> int:
        return self.kinds.get(kind, 1)

    def of_service(self, service: str) -> list[Instance]:
        return [i for i in self.instances if i.service == service]


def _kind(value: str) -> Kind | None:
    try:
        return Kind(value)
    except ValueError:
        return None


def summaries(instances: list[Instance]) -> list[ServiceSummary]:
    grouped: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        grouped[instance.service].append(instance)
    found = []
    for name in sorted(grouped):
        members = grouped[name]
        counts = dict.fromkeys(Health, 0)
        for member in members:
            counts[member.health] += 1
        found.append(
            ServiceSummary(
                name=name,
                kinds=sorted({m.kind for m in members}),
                instances=len(members),
                passing=counts[Health.PASSING],
                warning=counts[Health.WARNING],
                critical=counts[Health.CRITICAL],
            )
        )
    return found


def matches(instance: Instance, query: AgentQuery) -> bool:
    """The agent search of the other backends: skill id, tag (or skill tag), text terms."""
    if instance.kind is not Kind.A2A_AGENT:
        return False
    if query.passing_only and instance.health is not Health.PASSING:
        return False
    card = instance.card or {}
    skills = [s for s in card.get("skills") or [] if isinstance(s, dict)]
    if query.skill and query.skill.lower() not in {str(s.get("id", "")).lower() for s in skills}:
        return False
    if query.tag:
        tags = {t.lower() for t in instance.tags}
        tags.update(str(t).lower() for s in skills for t in s.get("tags") or [])
        if query.tag.lower() not in tags:
            return False
    if query.text:
        text = [
            instance.service,
            instance.id,
            str(card.get("name", "")),
            str(card.get("description", "")),
        ]
        for s in skills:
            text += [str(s.get("id", "")), str(s.get("name", "")), str(s.get("description", ""))]
        haystack = " ".join(text).lower()
        return all(term in haystack for term in query.text.lower().split())
    return True
