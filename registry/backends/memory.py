"""The in-memory backend, and the health engine the embedded backends share.

Health follows Consul: every check of a new instance starts ``critical``; a
heartbeat sets the TTL check and a lapsed TTL makes it ``critical``; probe
results move the probe check after ``successes_before_passing`` successes or
``failures_before_critical`` failures; the instance is the worst of its checks;
an instance critical for ``deregister_critical_after_seconds`` is removed.
Every visible change moves the index; a heartbeat that changes nothing does
not, so heartbeats do not wake watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import anyio

from registry.backends.base import Indexed, RegistryBackend, Scope
from registry.errors import Conflict, Forbidden, NotFound
from registry.models import (
    AgentQuery,
    CheckState,
    Health,
    Instance,
    InstanceKey,
    Kind,
    Registration,
    ServiceSummary,
)

__all__ = ["MemoryBackend"]

logger = logging.getLogger("meshgate.registry.health")

Clock = Callable[[], float]
# The reaper never sleeps longer than this, so a clock jump is noticed soon.
_MAX_REAP_SLEEP = 1.0


@dataclass(eq=False, slots=True)
class _Entry:
    service: str
    id: str
    registration: Registration
    owner: str | None
    create_index: int
    modify_index: int
    ttl_status: Health = Health.CRITICAL
    ttl_output: str = "awaiting first heartbeat"
    ttl_deadline: float = 0.0
    probe_status: Health | None = None
    probe_output: str = ""
    probe_successes: int = 0
    probe_failures: int = 0
    health: Health = Health.CRITICAL
    critical_since: float | None = None
    snapshot: Instance | None = field(default=None, repr=False)
    skills: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    text: str = ""

    @property
    def key(self) -> InstanceKey:
        return (self.service, self.id)

    def reset_checks(self, now: float) -> None:
        check = self.registration.check
        self.ttl_status, self.ttl_output = Health.CRITICAL, "awaiting first heartbeat"
        self.ttl_deadline = now + check.ttl_seconds
        probing = check.interval_seconds > 0
        self.probe_status = Health.CRITICAL if probing else None
        self.probe_output = "awaiting first probe" if probing else ""
        self.probe_successes = self.probe_failures = 0

    def stored_checks(self) -> str:
        """The status of each check, as a store keeps it (JSON)."""
        probe = None if self.probe_status is None else [self.probe_status, self.probe_output]
        return json.dumps({"ttl": [self.ttl_status, self.ttl_output], "probe": probe})

    def apply_stored_checks(self, stored: str) -> None:
        """Take back the statuses :meth:`stored_checks` wrote; an unreadable one is ignored."""
        try:
            state = json.loads(stored)
            ttl_status, ttl_output = Health(state["ttl"][0]), str(state["ttl"][1])
            probe = state.get("probe")
            probe_state = None if probe is None else (Health(probe[0]), str(probe[1]))
        except (ValueError, TypeError, KeyError, IndexError):
            return
        self.ttl_status, self.ttl_output = ttl_status, ttl_output
        if self.probe_status is not None and probe_state is not None:
            self.probe_status, self.probe_output = probe_state

    def aggregate(self) -> Health:
        states = [self.ttl_status]
        if self.probe_status is not None:
            states.append(self.probe_status)
        return Health.worst(states)

    def index_search_fields(self) -> None:
        reg = self.registration
        tags = {t.lower() for t in reg.tags}
        skills: set[str] = set()
        text = [self.service, self.id]
        card = reg.card or {}
        text += [str(card.get("name", "")), str(card.get("description", ""))]
        for skill in card.get("skills") or []:
            if not isinstance(skill, dict):
                continue
            skills.add(str(skill.get("id", "")).lower())
            tags.update(str(t).lower() for t in skill.get("tags") or [])
            text += [str(skill.get("id", "")), str(skill.get("name", ""))]
            text.append(str(skill.get("description", "")))
        self.skills, self.tags = frozenset(skills), frozenset(tags)
        self.text = " ".join(text).lower()

    def render(self) -> Instance:
        if self.snapshot is None:
            reg = self.registration
            checks = [CheckState(name="ttl", status=self.ttl_status, output=self.ttl_output)]
            if self.probe_status is not None:
                checks.append(
                    CheckState(name="probe", status=self.probe_status, output=self.probe_output)
                )
            self.snapshot = Instance(
                service=self.service,
                id=self.id,
                kind=reg.kind,
                url=reg.url,
                card=reg.card,
                tools=reg.tools,
                tags=reg.tags,
                meta=reg.meta,
                check=reg.check,
                health=self.health,
                checks=checks,
                create_index=self.create_index,
                modify_index=self.modify_index,
            )
        return self.snapshot


@dataclass(slots=True)
class _AgentView:
    """Agent entries in (service, id) order, with skill and tag indexes."""

    ordered: list[_Entry]
    by_skill: dict[str, list[_Entry]] = field(default_factory=dict)
    by_tag: dict[str, list[_Entry]] = field(default_factory=dict)


class MemoryBackend(RegistryBackend):
    """Registrations in memory: for tests and throwaway meshes.

    Subclasses persist through the ``_persist_*`` hooks: registrations before
    they are acknowledged, the status of checks when it changes.
    """

    name = "memory"

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[InstanceKey, _Entry] = {}
        self._by_service: dict[str, dict[str, _Entry]] = {}
        self._index = 1
        self._service_index: dict[str, int] = {}
        self._kind_index: dict[Kind, int] = {}
        self._agent_view: _AgentView | None = None
        self._changed: anyio.Event | None = None
        self._deadlines: list[tuple[float, str, str]] = []
        self._wake: anyio.Event | None = None
        self._next_wake = float("inf")
        self._reaper: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        await self._load()
        self._reaper = asyncio.create_task(self._reap_forever(), name="registry-reaper")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None

    # -- persistence hooks (no-ops in memory) --------------------------------

    async def _load(self) -> None:
        """Restore registrations; called once by :meth:`start`."""

    def _persist_put(self, entry: _Entry) -> None:
        """Make a registration durable before it is acknowledged."""

    def _persist_delete(self, key: InstanceKey) -> None:
        """Forget a registration durably."""

    def _persist_index(self, index: int) -> None:
        """Record the global index so that it never goes back after a restart."""

    def _persist_checks(self, entry: _Entry) -> None:
        """Record the status of an instance's checks after one changed (best effort)."""

    def _restore(self, entry: _Entry, stored_checks: str | None = None) -> None:
        """Add a registration read back from storage.

        Its checks keep the status they had (``stored_checks``), as Consul's do
        across an agent restart: the TTL runs anew from now and the probe's
        counters start over. Without a stored status every check starts critical.
        """
        now = self._clock()
        entry.reset_checks(now)
        if stored_checks is not None:
            entry.apply_stored_checks(stored_checks)
        entry.health = entry.aggregate()
        entry.critical_since = now if entry.health is Health.CRITICAL else None
        entry.index_search_fields()
        self._entries[entry.key] = entry
        self._by_service.setdefault(entry.service, {})[entry.id] = entry
        self._agent_view = None
        self._service_index[entry.service] = max(
            self._service_index.get(entry.service, 1), entry.modify_index
        )
        self._index = max(self._index, entry.modify_index)
        kind = entry.registration.kind
        self._kind_index[kind] = max(self._kind_index.get(kind, 1), entry.modify_index)
        self._schedule(entry.ttl_deadline, entry.key)
        self._schedule_deregister(entry)

    # -- writes --------------------------------------------------------------

    async def register(
        self, service: str, instance: str, registration: Registration, *, owner: str | None
    ) -> tuple[Instance, bool]:
        peers = self._by_service.get(service, {})
        holder = next((e.owner for e in peers.values() if e.owner is not None), None)
        if owner is not None and holder is not None and holder != owner:
            raise Conflict(f"service {service!r} is registered by another API key")
        now = self._clock()
        previous = self._entries.get((service, instance))
        index = self._next_index()
        entry = _Entry(
            service=service,
            id=instance,
            registration=registration,
            owner=owner if previous is None or previous.owner is None else previous.owner,
            create_index=previous.create_index if previous else index,
            modify_index=index,
        )
        same_endpoint = (
            previous is not None
            and previous.registration.url == registration.url
            and previous.registration.kind == registration.kind
        )
        if previous is not None and same_endpoint:
            # A re-registration of the same endpoint (a restart, an updated card)
            # keeps its health, so routing does not flap.
            entry.ttl_status, entry.ttl_output = previous.ttl_status, previous.ttl_output
            entry.ttl_deadline = now + registration.check.ttl_seconds
            if registration.check.interval_seconds > 0:
                entry.probe_status = previous.probe_status or Health.CRITICAL
                entry.probe_output = previous.probe_output or "awaiting first probe"
            entry.health = entry.aggregate()
            # The critical clock runs on from a critical previous record, and
            # starts now for one the new checks make critical (a probe added).
            since = previous.critical_since if previous.health is Health.CRITICAL else None
            critical = entry.health is Health.CRITICAL
            entry.critical_since = (now if since is None else since) if critical else None
        else:
            entry.reset_checks(now)
            entry.health, entry.critical_since = Health.CRITICAL, now
        entry.index_search_fields()
        self._persist_put(entry)
        self._entries[entry.key] = entry
        self._by_service.setdefault(service, {})[instance] = entry
        self._agent_view = None
        self._commit_index(service, registration.kind, index)
        if previous is not None and previous.registration.kind is not registration.kind:
            self._kind_index[previous.registration.kind] = index
        self._schedule(entry.ttl_deadline, entry.key)
        self._schedule_deregister(entry)
        return entry.render(), previous is None

    async def deregister(self, service: str, instance: str, *, owner: str | None) -> None:
        entry = self._require(service, instance)
        self._check_owner(entry, owner)
        self._remove(entry)

    async def heartbeat(
        self,
        service: str,
        instance: str,
        *,
        status: Health = Health.PASSING,
        note: str = "",
        owner: str | None,
    ) -> Instance:
        entry = self._require(service, instance)
        self._check_owner(entry, owner)
        entry.ttl_deadline = self._clock() + entry.registration.check.ttl_seconds
        if entry.ttl_status is Health.CRITICAL:
            # A lapsed TTL left no expiry pending; a live one re-arms itself.
            self._schedule(entry.ttl_deadline, entry.key)
        if (entry.ttl_status, entry.ttl_output) != (status, note):
            entry.ttl_status, entry.ttl_output = status, note
            self._changed_checks(entry)
        return entry.render()

    async def record_probe(self, service: str, instance: str, *, ok: bool, output: str) -> None:
        entry = self._entries.get((service, instance))
        if entry is None or entry.probe_status is None:
            return  # deregistered, or its probe turned off, while the probe ran
        check = entry.registration.check
        if ok:
            entry.probe_successes, entry.probe_failures = entry.probe_successes + 1, 0
            flip = entry.probe_successes >= check.successes_before_passing
            status = Health.PASSING if flip else entry.probe_status
        else:
            entry.probe_failures, entry.probe_successes = entry.probe_failures + 1, 0
            flip = entry.probe_failures >= check.failures_before_critical
            status = Health.CRITICAL if flip else entry.probe_status
        if (status, output) != (entry.probe_status, entry.probe_output):
            entry.probe_status, entry.probe_output = status, output
            self._changed_checks(entry)

    # -- reads ---------------------------------------------------------------

    async def get(self, service: str, instance: str) -> Instance:
        return self._require(service, instance).render()

    async def services(self) -> Indexed[list[ServiceSummary]]:
        summaries = []
        for name in sorted(self._by_service):
            entries = self._by_service[name].values()
            counts = dict.fromkeys(Health, 0)
            for e in entries:
                counts[e.health] += 1
            summaries.append(
                ServiceSummary(
                    name=name,
                    kinds=sorted({e.registration.kind for e in entries}),
                    instances=len(entries),
                    passing=counts[Health.PASSING],
                    warning=counts[Health.WARNING],
                    critical=counts[Health.CRITICAL],
                )
            )
        return Indexed(self._index, summaries)

    async def instances(
        self, service: str, *, passing_only: bool = False
    ) -> Indexed[list[Instance]]:
        entries = self._by_service.get(service, {})
        found = _render(entries[i] for i in sorted(entries))
        if passing_only:
            found = [i for i in found if i.health is Health.PASSING]
        return Indexed(self.index(Scope(service)), found)

    async def all_instances(self) -> Indexed[list[Instance]]:
        return Indexed(self._index, _render(self._entries[k] for k in sorted(self._entries)))

    async def agents(self, query: AgentQuery) -> Indexed[list[Instance]]:
        view = self._agents()
        candidates = view.ordered
        if query.skill:
            candidates = view.by_skill.get(query.skill.lower(), [])
        if query.tag:
            tagged = view.by_tag.get(query.tag.lower(), [])
            if query.skill:
                with_tag = {id(e) for e in tagged}
                candidates = [e for e in candidates if id(e) in with_tag]
            else:
                candidates = tagged
        terms = query.text.lower().split() if query.text else []
        matches = [
            e
            for e in candidates
            if all(t in e.text for t in terms)
            and (not query.passing_only or e.health is Health.PASSING)
        ]
        return Indexed(self.index(Scope.of_kind(Kind.A2A_AGENT)), _render(matches))

    def _agents(self) -> _AgentView:
        # Rebuilt only when agents come or go (not on health changes), so
        # searches neither scan tool servers nor sort.
        if self._agent_view is None:
            ordered = sorted(
                (e for e in self._entries.values() if e.registration.kind is Kind.A2A_AGENT),
                key=lambda e: (e.service, e.id),
            )
            view = _AgentView(ordered)
            for e in ordered:
                for skill in e.skills:
                    view.by_skill.setdefault(skill, []).append(e)
                for tag in e.tags:
                    view.by_tag.setdefault(tag, []).append(e)
            self._agent_view = view
        return self._agent_view

    # -- blocking queries ----------------------------------------------------

    def index(self, scope: Scope) -> int:
        if scope.service is not None:
            return self._service_index.get(scope.service, 1)
        if scope.kind is not None:
            return self._kind_index.get(scope.kind, 1)
        return self._index

    async def wait(self, scope: Scope, index: int, max_wait: float) -> int:
        if index == 0 or index != self.index(scope):
            return self.index(scope)
        with anyio.move_on_after(max_wait):
            while self.index(scope) == index:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
        return self.index(scope)

    # -- internals -----------------------------------------------------------

    def _require(self, service: str, instance: str) -> _Entry:
        entry = self._entries.get((service, instance))
        if entry is None:
            raise NotFound(f"instance {instance!r} of service {service!r} is not registered")
        return entry

    @staticmethod
    def _check_owner(entry: _Entry, owner: str | None) -> None:
        if entry.owner is not None and owner != entry.owner:
            raise Forbidden(f"instance {entry.id!r} was registered by another API key")

    def _next_index(self) -> int:
        return self._index + 1

    def _commit_index(self, service: str, kind: Kind, index: int) -> None:
        self._index = index
        self._service_index[service] = index
        self._kind_index[kind] = index
        self._persist_index(index)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _changed_checks(self, entry: _Entry) -> None:
        health = entry.aggregate()
        if health is not entry.health:
            failing = [
                f"{name}: {output}"
                for name, status, output in (
                    ("ttl", entry.ttl_status, entry.ttl_output),
                    ("probe", entry.probe_status, entry.probe_output),
                )
                if status not in (None, Health.PASSING)
            ]
            logger.info(
                "%s/%s is %s%s",
                entry.service,
                entry.id,
                health.value,
                f" ({'; '.join(failing)})" if failing else "",
            )
            entry.health = health
            entry.critical_since = self._clock() if health is Health.CRITICAL else None
            self._schedule_deregister(entry)
        entry.modify_index = self._next_index()
        entry.snapshot = None
        self._persist_checks(entry)
        self._commit_index(entry.service, entry.registration.kind, entry.modify_index)

    def _remove(self, entry: _Entry) -> None:
        self._persist_delete(entry.key)
        del self._entries[entry.key]
        self._agent_view = None
        peers = self._by_service[entry.service]
        del peers[entry.id]
        if not peers:
            del self._by_service[entry.service]
        self._commit_index(entry.service, entry.registration.kind, self._next_index())

    def _schedule(self, deadline: float, key: InstanceKey) -> None:
        heapq.heappush(self._deadlines, (deadline, *key))
        if deadline < self._next_wake and self._wake is not None:
            self._wake.set()

    def _schedule_deregister(self, entry: _Entry) -> None:
        after = entry.registration.check.deregister_critical_after_seconds
        if after is not None and entry.critical_since is not None:
            self._schedule(entry.critical_since + after, entry.key)

    def reap(self) -> None:
        """Expire TTLs and remove long-critical instances whose time has come."""
        now = self._clock()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, service, instance = heapq.heappop(self._deadlines)
            entry = self._entries.get((service, instance))
            if entry is None:
                continue
            if entry.ttl_deadline <= now and entry.ttl_status is not Health.CRITICAL:
                entry.ttl_status, entry.ttl_output = Health.CRITICAL, "TTL expired"
                self._changed_checks(entry)
            elif entry.ttl_deadline > now:
                # Heartbeats moved the deadline on without touching the heap.
                heapq.heappush(self._deadlines, (entry.ttl_deadline, service, instance))
            after = entry.registration.check.deregister_critical_after_seconds
            since = entry.critical_since
            if after is not None and since is not None and since + after <= now:
                logger.info(
                    "deregistered %s/%s: critical for more than %gs", service, instance, after
                )
                self._remove(entry)

    async def _reap_forever(self) -> None:
        while True:
            self.reap()
            now = self._clock()
            self._next_wake = min(
                self._deadlines[0][0] if self._deadlines else float("inf"),
                now + _MAX_REAP_SLEEP,
            )
            self._wake = anyio.Event()
            with anyio.move_on_after(max(self._next_wake - now, 0.0)):
                await self._wake.wait()


def _render(entries: Iterable[_Entry]) -> list[Instance]:
    return [e.render() for e in entries]
