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

    def __init__(self, target: str, known: bool, *, held: bool = False) -> None:
        super().__init__(target)
        self.target = target
        #: Whether the target exists at all (callers may hide that from outsiders).
        self.known = known
        #: The message went to an instance before, which is registered but not
        #: routable now: only that instance may answer it (another would run it again).
        self.held = held


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

    def forget(self, task_id: str, owner: InstanceKey) -> None:
        """Drop ``task_id`` if ``owner`` still has it (a later owner stays)."""
        if self._owners.get(task_id) == owner:
            del self._owners[task_id]

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._owners

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
        #: Where recent new messages went (by target and ``messageId``; agents
        #: remember as many): set before a message is sent, dropped if it
        #: provably never arrived.
        self.messages = TaskAffinity(capacity=10_000)

    def pick(
        self,
        *,
        service: str | None = None,
        skill: str | None = None,
        task_id: str | None = None,
        message_key: str | None = None,
        exclude: Collection[InstanceKey] = (),
    ) -> Route:
        """The instance for one attempt; raises :class:`NoRoute`.

        A task's owner wins when it is still routable (its tasks live there);
        otherwise the balancer chooses among admitted instances. A message sent
        before (a client's retry of it) goes where it went, and nowhere else
        while that instance is still registered: it may have run the message,
        and only it can answer with that task instead of running it again.
        """
        table = self.table()
        routes = table.routes(service) if service is not None else table.by_skill(skill or "")
        target = service if service is not None else f"skill:{skill}"
        owner = None
        if task_id is not None:
            owner = self.affinity.owner(task_id)
        elif message_key is not None:
            owner = self.messages.owner(message_key)
            if owner is not None and all(r.key != owner for r in routes):
                if any(r.key == owner for r in table.services.get(owner[0], ())):
                    raise NoRoute(target, True, held=True)
                # Deregistered, and its tasks with it: the message can only run anew.
                self.messages.forget(message_key, owner)
                owner = None
        if owner is not None and owner not in exclude:
            for route in routes:
                if route.key == owner:
                    return route
        available = self.upstreams.available
        candidates = [r for r in routes if r.key not in exclude and available(r.key)]
        if not candidates:
            known = bool(table.services.get(service) if service else table.skills.get(skill or ""))
            raise NoRoute(target, known)
        if len(candidates) == 1:
            return candidates[0]
        return self.balancer.pick(target, candidates, self._load)

    def _load(self, key: InstanceKey) -> int:
        return self.upstreams.get(key).in_flight
