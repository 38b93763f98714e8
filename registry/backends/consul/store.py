"""The reads and KV transactions of the ``consul`` backend, over py-consul.

A full read is two calls (every check, every KV record under the prefix); a
service read is ``/v1/health/service/<name>`` and that service's records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from registry.backends.consul.http import AsyncConsul
from registry.backends.consul.mapping import (
    Layout,
    decode_record,
    kv_delete,
    kv_set,
    service_id,
)
from registry.backends.consul.views import Snapshot
from registry.errors import BackendUnavailable
from registry.models import Kind

__all__ = ["ConsulStore"]

logger = logging.getLogger("meshgate.registry.consul")

Call = Callable[[str, Awaitable[Any]], Awaitable[Any]]


class ConsulStore:
    """Reads and KV writes on one py-consul client; ``call`` maps failures to 503."""

    def __init__(self, layout: Layout, call: Call) -> None:
        self.layout = layout
        self._call = call
        self._client: AsyncConsul | None = None

    @property
    def client(self) -> AsyncConsul:
        if self._client is None:
            raise BackendUnavailable("the consul registry backend is not started")
        return self._client

    @client.setter
    def client(self, client: AsyncConsul | None) -> None:
        self._client = client

    async def read_all(self) -> Snapshot:
        """Every instance; its index is that of every check and every record."""
        c = self.client
        (checks_index, checks), (kv_index, items) = await self._call(
            "read",
            asyncio.gather(c.health.state("any"), c.kv.get(self.layout.prefix + "/", recurse=True)),
        )
        index = max(int(checks_index or 0), int(kv_index or 0))
        return Snapshot.build(self.layout, index, items or [], checks or [])

    async def read_service(self, service: str, *, passing: bool = False) -> Snapshot:
        """One service's instances; ``passing`` keeps those Consul's ``?passing`` keeps."""
        c = self.client
        calls: list[Awaitable[Any]] = [
            c.health.service(service),
            c.kv.get(self.layout.instances(service), recurse=True),
        ]
        if passing:
            calls.append(c.health.service(service, passing=True))
        answers = await self._call("read", asyncio.gather(*calls))
        (index, entries), (_, items) = answers[0], answers[1]
        present = {str(e["Service"]["ID"]) for e in entries or []}
        checks = [check for e in entries or [] for check in e.get("Checks") or []]
        snapshot = Snapshot.build(
            self.layout, int(index or 0), items or [], checks, present=present
        )
        if passing:
            # The index stays that of the whole service: the filter does not move it.
            ids = {str(e["Service"]["ID"]) for e in answers[2][1] or []}
            kept = [i for i in snapshot.instances if service_id(i.service, i.id) in ids]
            snapshot = Snapshot(snapshot.index, kept, snapshot.owners, snapshot.services)
        return snapshot

    def markers(self, service: str, kinds: set[Kind]) -> list[dict[str, Any]]:
        """Operations that move the index of ``service`` and of ``kinds``."""
        keys = [self.layout.marker(service), *(self.layout.kind(k) for k in sorted(kinds))]
        return [kv_set(key, b"") for key in keys]

    async def txn(self, what: str, ops: list[dict[str, Any]]) -> bool:
        """Apply KV operations at one index; False when a CAS among them failed."""
        try:
            await self._call(what, self.client.txn.put(ops))
        except BackendUnavailable as exc:
            if "409" in exc.detail:
                return False
            raise
        return True

    async def forget_orphans(self, snapshot: Snapshot) -> bool:
        """Delete records of instances Consul reaped (deregister-critical-after).

        Each is checked against ``/v1/health/service`` first and deleted with
        ``?cas``, so a registration in flight elsewhere is never lost. Returns
        whether any was deleted.
        """
        forgot = False
        for (service, instance), item in snapshot.orphans.items():
            _, entries = await self._call("read", self.client.health.service(service))
            if any(e["Service"]["ID"] == service_id(service, instance) for e in entries or []):
                continue
            key = self.layout.record(service, instance)
            kind = decode_record(item.value)[0].kind
            ops = [kv_delete(key, cas=item.modify_index), *self.markers(service, {kind})]
            if await self.txn("read", ops):
                logger.info("forgot %s/%s: consul deregistered it", service, instance)
                forgot = True
        return forgot
