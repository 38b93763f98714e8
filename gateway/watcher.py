"""Keeps the route table current from one blocking-query watch of the registry.

The table is rebuilt when the registry's index moves and swapped whole. When
the registry cannot be reached the last good table keeps serving, marked
stale; :attr:`RouteWatcher.staleness` says for how long. Parts that follow
the table (``/mcp``'s ``list_changed``) :meth:`~RouteWatcher.subscribe` to swaps.
Instances whose URL the gateway's URL policy refuses (a store written past
the registry's door) never enter the table. A registry back from an outage
may know less than before (a memory store restarts empty; a store written
before check states were kept restarts every instance critical): for
``settle`` seconds a table routing fewer instances than the current one does
not replace it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

import anyio

from gateway.table import RouteTable
from registry.client import Backoff, RegistryClient
from registry.errors import BackendUnavailable, RegistryError
from registry.models import Instance, InstanceKey
from registry.ssrf import UrlPolicy, literal_refusal

__all__ = ["RouteWatcher", "TableUpdates"]

logger = logging.getLogger("meshgate.gateway.routes")

#: At most this many registry queries a second, however fast the index moves.
_MIN_QUERY_INTERVAL = 0.05


class RouteWatcher:
    """Owns the current :class:`RouteTable`; run :meth:`run` in the gateway's lifespan."""

    def __init__(
        self,
        registry: RegistryClient,
        *,
        wait: float = 30.0,
        on_table: Callable[[RouteTable], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        url_policy: UrlPolicy | None = None,
        settle: float = 10.0,
    ) -> None:
        self._registry = registry
        self._settle = settle
        self._settle_until = float("-inf")
        self._url_policy = url_policy
        #: Instances refused by the URL policy, each logged once.
        self._refused: set[InstanceKey] = set()
        self._wait = wait
        self._on_table = on_table
        self._clock = clock
        self.table = RouteTable.empty()
        self.loaded = anyio.Event()
        #: When the registry last answered; ``None`` while it answers.
        self._unreachable_since: float | None = None
        self._last_answer = 0.0
        #: How stale the registry said its last answer was (its store cut off).
        self._registry_stale = 0.0
        self._subscribers: set[TableUpdates] = set()

    @property
    def stale(self) -> bool:
        """True while the registry cannot be reached, or answers from a store cut
        off from its source (Consul down): the table may be out of date."""
        return self._unreachable_since is not None or self._registry_stale > 0

    @property
    def staleness(self) -> float:
        """Seconds the table may be behind: since the registry last answered,
        plus how stale it said that answer was; 0 while fresh answers come."""
        if not self.stale or not self._last_answer:
            return 0.0
        return self._clock() - self._last_answer + self._registry_stale

    def subscribe(self) -> TableUpdates:
        """Table swaps from now on, as an async iterator; use it as a context manager.

        ``with watcher.subscribe() as updates: async for table in updates: ...``
        Swaps that happen while the consumer is busy coalesce: it is woken once
        and gets the newest table, so a slow subscriber never holds a queue.
        """
        updates = TableUpdates(self)
        self._subscribers.add(updates)
        return updates

    async def run(self) -> None:
        index = 0
        backoff = Backoff(base=0.1, cap=2.0)
        last_query = float("-inf")
        while True:
            pause = last_query + _MIN_QUERY_INTERVAL - self._clock()
            if pause > 0:
                await anyio.sleep(pause)
            last_query = self._clock()
            try:
                result = await self._registry.all_instances(
                    index=index or None, wait=self._wait if index else None
                )
            except RegistryError as exc:
                if not isinstance(exc, BackendUnavailable) and type(exc) is not RegistryError:
                    logger.error("the registry refused the route watch: %s", exc.detail)
                if self._unreachable_since is None:
                    self._unreachable_since = self._clock()
                    logger.warning(
                        "registry unreachable (%s); serving the last route table", exc.detail
                    )
                await anyio.sleep(backoff.next_delay())
                continue
            self._last_answer = self._clock()
            if (result.stale_seconds > 0) != (self._registry_stale > 0):
                if result.stale_seconds > 0:
                    logger.warning(
                        "the registry answers from a store cut off for %.1f s; "
                        "the route table may be out of date",
                        result.stale_seconds,
                    )
                else:
                    logger.info("the registry's store is reachable again")
            self._registry_stale = result.stale_seconds
            if self._unreachable_since is not None:
                logger.info("registry reachable again")
                self._unreachable_since = None
                self._settle_until = self._clock() + self._settle
            backoff.reset()
            current = max(result.index, 1)
            if current < index:
                logger.info("registry index went back (%d -> %d): reloading", index, current)
            if current != index or not self.table.loaded:
                instances = self._admitted(result.value)
                table = RouteTable.build(instances, current, now=self._clock())
                if self._holding(table):
                    continue  # the index stays: asked again at once, until settled
                self._swap(table)
            index = current

    def _holding(self, table: RouteTable) -> bool:
        """Whether ``table`` waits: settling, and it routes fewer instances than now."""
        if self._clock() >= self._settle_until:
            return False
        if _routable(table) >= _routable(self.table):
            self._settle_until = float("-inf")
            return False
        return True

    def _admitted(self, instances: list[Instance]) -> list[Instance]:
        """The instances whose URL the policy admits: the gateway never dispatches to the rest."""
        if self._url_policy is None:
            return instances
        admitted = []
        for instance in instances:
            reason = literal_refusal(instance.url, self._url_policy)
            if reason is None:
                admitted.append(instance)
            elif instance.key not in self._refused:
                self._refused.add(instance.key)
                logger.warning("not routing to %s/%s: %s", *instance.key, reason)
        return admitted

    def _swap(self, table: RouteTable) -> None:
        self.table = table
        if self._on_table is not None:
            self._on_table(table)
        for updates in self._subscribers:
            updates._changed.set()
        if not self.loaded.is_set():
            logger.info("route table loaded: %d services", len(table.services))
            self.loaded.set()


def _routable(table: RouteTable) -> int:
    return sum(len(routes) for routes in table.routable_services.values())


class TableUpdates:
    """One subscriber's view of :class:`RouteWatcher` swaps (see :meth:`RouteWatcher.subscribe`)."""

    def __init__(self, watcher: RouteWatcher) -> None:
        self._watcher = watcher
        self._changed = anyio.Event()  # needs the event loop: subscribe from a task

    def __enter__(self) -> TableUpdates:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving swaps."""
        self._watcher._subscribers.discard(self)

    def __aiter__(self) -> TableUpdates:
        return self

    async def __anext__(self) -> RouteTable:
        await self._changed.wait()
        self._changed = anyio.Event()
        return self._watcher.table
