"""The ``consul`` backend: registrations as Consul services, checks and KV.

Consul holds all state; this class keeps only the last answer it read, to keep
serving reads (marked stale, :meth:`ConsulBackend.staleness`) while Consul
cannot be reached. Writes then fail with
:class:`~registry.errors.BackendUnavailable` (503). Consul runs the checks
itself (a TTL check and an HTTP check per instance), so
:meth:`~ConsulBackend.record_probe` has nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Self

import httpx

from registry.backends.base import BackendOptions, Indexed, RegistryBackend, Scope
from registry.backends.consul.http import AsyncConsul
from registry.backends.consul.link import ConsulLink
from registry.backends.consul.mapping import (
    Layout,
    check_ids,
    encode_record,
    kv_delete,
    kv_set,
    service_id,
    service_payload,
)
from registry.backends.consul.settings import ConsulSettings
from registry.backends.consul.store import ConsulStore
from registry.backends.consul.views import Snapshot, matches, summaries
from registry.backends.consul.watch import IndexCursor, block_once
from registry.errors import BackendUnavailable, Conflict, Forbidden, NotFound
from registry.models import AgentQuery, Health, Instance, Kind, Registration, ServiceSummary

__all__ = ["ConsulBackend"]

logger = logging.getLogger("meshgate.registry.consul")
# Reading back a write waits at most about a second for the agent's sync.
_SETTLE_ATTEMPTS = 20
_SETTLE_PAUSE = 0.05


class ConsulBackend(RegistryBackend):
    """Registrations in Consul (``--backend consul``); any number of registries may share one."""

    name = "consul"
    runs_own_checks = True

    def __init__(
        self,
        settings: ConsulSettings | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or ConsulSettings()
        self._layout = Layout(self.settings.kv_prefix)
        self._clock = clock
        self._own_http = http is None
        self._http = http
        self._last: Snapshot | None = None
        self._known: dict[Scope, int] = {}
        self._link = ConsulLink(
            self.settings.addr, max_backoff=self.settings.max_backoff, clock=clock
        )
        self._call = self._link.call
        self._store = ConsulStore(self._layout, self._call)

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        return cls(ConsulSettings.from_mapping(options.settings))

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self._store.client = AsyncConsul(self.settings, self._http)
        try:
            await self._read_all()
        except BackendUnavailable as exc:
            logger.warning("%s; serving once it answers", exc.detail)

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
        self._http = self._store.client = None

    def staleness(self) -> float:
        """Seconds the reads have been served from the last answer (0 while Consul answers)."""
        return self._link.staleness()

    # -- calls -------------------------------------------------------------

    @property
    def _consul(self) -> AsyncConsul:
        return self._store.client

    # -- reads -------------------------------------------------------------

    async def _read_all(self) -> Snapshot:
        snapshot = await self._store.read_all()
        if snapshot.orphans and await self._store.forget_orphans(snapshot):
            # Forgetting moved the markers past the reaped instance's last index,
            # which the first read no longer counted: the index must not go back.
            snapshot = await self._store.read_all()
        self._learn(snapshot)
        return snapshot

    async def _read_service(self, service: str, *, passing: bool = False) -> Snapshot:
        snapshot = await self._store.read_service(service, passing=passing)
        if snapshot.orphans and await self._store.forget_orphans(snapshot):
            snapshot = await self._store.read_service(service, passing=passing)
        self._known[Scope(service)] = snapshot.service_index(service)
        return snapshot

    def _learn(self, snapshot: Snapshot) -> None:
        self._last = snapshot
        self._known = {Scope(name): i for name, i in snapshot.services.items()}
        self._known.update({Scope.of_kind(kind): i for kind, i in snapshot.kinds.items()})
        self._known[Scope.everything()] = snapshot.index

    async def _all(self) -> Snapshot:
        """A fresh read, or the last one while Consul is down (between retries, at once)."""
        if self._serve_stale():
            assert self._last is not None
            return self._last
        try:
            return await self._read_all()
        except BackendUnavailable:
            if self._last is None:
                raise
            return self._last

    async def _service(self, service: str, *, passing: bool = False) -> Snapshot:
        if self._serve_stale():
            assert self._last is not None
            return self._stale_service(self._last, service, passing)
        try:
            return await self._read_service(service, passing=passing)
        except BackendUnavailable:
            if self._last is None:
                raise
            return self._stale_service(self._last, service, passing)

    def _serve_stale(self) -> bool:
        # While Consul is down, reads between retries answer at once from the last read.
        return self._last is not None and self._link.down and not self._link.retry_due()

    @staticmethod
    def _stale_service(last: Snapshot, service: str, passing: bool) -> Snapshot:
        found = [i for i in last.of_service(service) if not passing or i.health is Health.PASSING]
        return Snapshot(last.index, found, last.owners, {service: last.service_index(service)})

    async def get(self, service: str, instance: str) -> Instance:
        return _find(await self._service(service), service, instance)

    async def services(self) -> Indexed[list[ServiceSummary]]:
        snapshot = await self._all()
        return Indexed(snapshot.index, summaries(snapshot.instances))

    async def instances(
        self, service: str, *, passing_only: bool = False
    ) -> Indexed[list[Instance]]:
        snapshot = await self._service(service, passing=passing_only)
        return Indexed(snapshot.service_index(service), snapshot.instances)

    async def agents(self, query: AgentQuery) -> Indexed[list[Instance]]:
        snapshot = await self._all()
        found = [i for i in snapshot.instances if matches(i, query)]
        return Indexed(snapshot.kind_index(Kind.A2A_AGENT), found)

    async def all_instances(self) -> Indexed[list[Instance]]:
        snapshot = await self._all()
        return Indexed(snapshot.index, snapshot.instances)

    # -- writes ------------------------------------------------------------

    async def register(
        self, service: str, instance: str, registration: Registration, *, owner: str | None
    ) -> tuple[Instance, bool]:
        view = await self._read_service(service)
        previous = next((i for i in view.instances if i.id == instance), None)
        holder = next((o for o in view.owners.values() if o is not None), None)
        if owner is not None and holder is not None and holder != owner:
            raise Conflict(f"service {service!r} is registered by another API key")
        if owner is not None:
            await self._claim(service, owner, taken=holder is not None)
        kept_owner = view.owners.get((service, instance)) if previous else None
        same_endpoint = previous is not None and (previous.url, previous.kind) == (
            registration.url,
            registration.kind,
        )
        status: dict[str, Health] = (
            {c.name: c.status for c in previous.checks} if previous and same_endpoint else {}
        )
        c = self._consul
        payload = service_payload(service, instance, registration, status)
        # The service first, then its record: a reader that sees a record whose
        # service is missing may take it for one Consul reaped.
        await self._call("register", c.agent.service.register(**payload))
        record = encode_record(registration, kept_owner or owner)
        kinds = {registration.kind, *([previous.kind] if previous else [])}
        ops = [
            kv_set(self._layout.record(service, instance), record),
            *self._store.markers(service, kinds),
        ]
        await self._store.txn("register", ops)
        if previous is not None and not same_endpoint:
            # A moved endpoint starts over even where Consul keeps a check's status.
            ttl_id, _ = check_ids(service, instance)
            await self._call("register", c.agent.check.ttl_fail(ttl_id, "awaiting first heartbeat"))
        stored = await self._settled(service, instance, lambda i: i.url == registration.url)
        return stored, previous is None

    async def _claim(self, service: str, owner: str, *, taken: bool) -> None:
        """Hold the owner key of ``service`` (``?cas=0`` creates it only if absent)."""
        c = self._consul
        key = self._layout.owner(service)
        _, item = await self._call("register", c.kv.get(key))
        current = item["Value"].decode() if item and item.get("Value") else None
        if current == owner:
            return
        cas = int(item["ModifyIndex"]) if item else 0
        if current is not None and taken:
            raise Conflict(f"service {service!r} is registered by another API key")
        # Absent, or left by an owner with no instance: take it, unless another
        # registry process takes it first.
        if not await self._call("register", c.kv.put(key, owner, cas=cas)):
            raise Conflict(f"service {service!r} was just taken by another API key")

    async def deregister(self, service: str, instance: str, *, owner: str | None) -> None:
        view = await self._read_service(service)
        found = _find(view, service, instance)
        _check_owner(view, found, owner)
        # The record (and the markers) first, in one transaction: the instance
        # disappears at one index; the service then follows.
        ops = [
            kv_delete(self._layout.record(service, instance)),
            *self._store.markers(service, {found.kind}),
        ]
        if len(view.instances) == 1:
            ops.append(kv_delete(self._layout.owner(service)))
        await self._store.txn("deregister", ops)
        c = self._consul
        await self._call("deregister", c.agent.service.deregister(service_id(service, instance)))
        await self._read_all()

    async def heartbeat(
        self,
        service: str,
        instance: str,
        *,
        status: Health = Health.PASSING,
        note: str = "",
        owner: str | None,
    ) -> Instance:
        view = await self._read_service(service)
        _check_owner(view, _find(view, service, instance), owner)
        ttl_id, _ = check_ids(service, instance)
        checks = self._consul.agent.check
        update = {Health.PASSING: checks.ttl_pass, Health.WARNING: checks.ttl_warn}.get(
            status, checks.ttl_fail
        )
        if not await self._call("heartbeat", update(ttl_id, note or None)):
            raise BackendUnavailable(
                f"the TTL check {ttl_id!r} is not on this Consul agent: it was just reaped, "
                "or registry processes talk to different agents (they must share one)"
            )

        def applied(instance: Instance) -> bool:
            ttl = next((c for c in instance.checks if c.name == "ttl"), None)
            return ttl is not None and (ttl.status, ttl.output) == (status, note)

        return await self._settled(service, instance, applied)

    async def _settled(
        self, service: str, instance: str, applied: Callable[[Instance], bool]
    ) -> Instance:
        """Read an instance back once a write shows in the catalog.

        A Consul agent syncs its services and checks to the servers just after
        it answers (anti-entropy), so a read may briefly miss the write.
        """
        for _ in range(_SETTLE_ATTEMPTS):
            snapshot = await self._read_all()
            found = next((i for i in snapshot.instances if i.key == (service, instance)), None)
            if found is not None and applied(found):
                return found
            await asyncio.sleep(_SETTLE_PAUSE)
        return _find(snapshot, service, instance)

    async def record_probe(self, service: str, instance: str, *, ok: bool, output: str) -> None:
        """Nothing to do: Consul runs the probe as the instance's HTTP check."""

    # -- blocking queries ----------------------------------------------------

    def index(self, scope: Scope) -> int:
        return self._known.get(scope, 1)

    async def _scope_index(self, scope: Scope) -> int:
        try:
            return await self._read_scope_index(scope)
        except BackendUnavailable:
            return self.index(scope)  # never read yet: the caller's next read says why

    async def _read_scope_index(self, scope: Scope) -> int:
        if scope.service is not None:
            return (await self._service(scope.service)).service_index(scope.service)
        snapshot = await self._all()
        if scope.kind is not None:
            return snapshot.kind_index(scope.kind)
        return snapshot.index

    async def wait(self, scope: Scope, index: int, max_wait: float) -> int:
        deadline = self._clock() + max_wait
        current = await self._scope_index(scope)
        if index == 0 or current != index:
            return current
        cursors = (IndexCursor(), IndexCursor())
        # Consul lost or found again is news too: the answer then says how stale
        # it is (or no longer), and a gateway marks its table accordingly at once.
        was_down = self._link.down
        while (remaining := deadline - self._clock()) > 0:
            asked = self._clock()
            try:
                await block_once(
                    self._consul,
                    self._layout,
                    scope.service,
                    cursors,
                    min(remaining, self.settings.max_block),
                    self._call,
                )
            except BackendUnavailable:
                if self._link.down != was_down:
                    return current
                await asyncio.sleep(min(max(self._link.retry_at - self._clock(), 0.01), remaining))
                continue
            current = await self._scope_index(scope)
            if self._link.down != was_down:
                return current
            if current != index:
                return current
            # An index can move without a change that matters here: never busy-loop.
            pause = asked + self.settings.min_requery - self._clock()
            if pause > 0:
                await asyncio.sleep(min(pause, max(deadline - self._clock(), 0)))
        return current


def _find(snapshot: Snapshot, service: str, instance: str) -> Instance:
    for found in snapshot.instances:
        if found.service == service and found.id == instance:
            return found
    raise NotFound(f"instance {instance!r} of service {service!r} is not registered")


def _check_owner(view: Snapshot, instance: Instance, owner: str | None) -> None:
    holder = view.owners.get(instance.key)
    if holder is not None and owner != holder:
        raise Forbidden(f"instance {instance.id!r} was registered by another API key")
