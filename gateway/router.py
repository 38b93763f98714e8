"""Choosing the instance for a request: health, outliers, affinity, balancing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection

from gateway.balancing import Balancer
from gateway.table import Route, RouteTable
from gateway.upstreams import Upstreams
from registry.models import InstanceKey

__all__ = ["NoRoute", "Router", "TaskAffinity"]


class NoRoute(Exception):
    """No routable instance for the target (unknown, all critical, or all ejected)."""

    def __init__(self, target: str, known: bool) -> None:
        super().__init__(target)
        self.target = target
        #: Whether the target exists at all (callers may hide that from outsiders).
        self.known = known


class TaskAffinity:
    """Which instance owns a task, so follow-ups reach it (bounded, least recently used)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._owners: OrderedDict[str, InstanceKey] = OrderedDict()
        self._capacity = capacity

    def remember(self, task_id: str, owner: InstanceKey) -> None:
        self._owners[task_id] = owner
        self._owners.move_to_end(task_id)
        if len(self._owners) > self._capacity:
            self._owners.popitem(last=False)

    def owner(self, task_id: str) -> InstanceKey | None:
        owner = self._owners.get(task_id)
        if owner is not None:
            self._owners.move_to_end(task_id)
        return owner

    def __len__(self) -> int:
        return len(self._owners)


class Router:
    """Picks a routable, admitted instance of a service or skill."""

    def __init__(
        self,
        table: Callable[[], RouteTable],
        upstreams: Upstreams,
        balancer: Balancer,
        affinity: TaskAffinity | None = None,
    ) -> None:
        self.table = table
        self.upstreams = upstreams
        self.balancer = balancer
        self.affinity = affinity or TaskAffinity()
        #: Where recent new messages went, by ``messageId`` (agents remember as many).
        self.messages = TaskAffinity(capacity=10_000)

    def pick(
        self,
        *,
        service: str | None = None,
        skill: str | None = None,
        task_id: str | None = None,
        message_id: str | None = None,
        exclude: Collection[InstanceKey] = (),
    ) -> Route:
        """The instance for one attempt; raises :class:`NoRoute`.

        A task's owner wins when it is still routable (its tasks live there),
        as does the instance a message went to before (a retry of it);
        otherwise the balancer chooses among admitted instances.
        """
        table = self.table()
        routes = table.routes(service) if service is not None else table.by_skill(skill or "")
        owner = None
        if task_id is not None:
            owner = self.affinity.owner(task_id)
        elif message_id is not None:
            owner = self.messages.owner(message_id)
        if owner is not None and owner not in exclude:
            for route in routes:
                if route.key == owner:
                    return route
        available = self.upstreams.available
        candidates = [r for r in routes if r.key not in exclude and available(r.key)]
        target = service if service is not None else f"skill:{skill}"
        if not candidates:
            known = bool(table.services.get(service) if service else table.skills.get(skill or ""))
            raise NoRoute(target, known)
        if len(candidates) == 1:
            return candidates[0]
        return self.balancer.pick(target, candidates, self._load)

    def _load(self, key: InstanceKey) -> int:
        return self.upstreams.get(key).in_flight
