"""A message sent again with the same ``messageId`` (a client's retry) runs once.

:class:`RecentMessages` remembers the task each recent new-task message made,
keyed by its ``messageId``. The first sender runs the skill; a repeat waits
for it and gets the same task back. The memory is bounded (LRU) and per
process, seeded at start from the task store (so a restart forgets nothing the
store kept): a repeat that reaches another replica, or comes after ``limit``
newer messages, is a new message. (The gateway sends a repeat where the first
went; see ``gateway.forwarding``.)
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

__all__ = ["RecentMessages"]


class RecentMessages:
    """``messageId`` -> the id of the task its first send made (``None``: none yet)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._tasks: OrderedDict[str, asyncio.Future[str | None]] = OrderedDict()
        #: Repeats waiting for their first send to end (tests watch it).
        self.waiting = 0

    @property
    def limit(self) -> int:
        return self._limit

    def seed(self, made: list[tuple[str, str]]) -> None:
        """Remember ``(messageId, task id)`` pairs that an earlier process made, oldest first."""
        loop = asyncio.get_running_loop()
        for message_id, task_id in made[-self._limit :]:
            if message_id in self._tasks:
                continue
            future: asyncio.Future[str | None] = loop.create_future()
            future.set_result(task_id)
            self._tasks[message_id] = future
        while len(self._tasks) > self._limit:
            self._tasks.popitem(last=False)

    def claim(self, message_id: str) -> asyncio.Future[str | None] | None:
        """``None`` when this send is the first (it must :meth:`settle`), else the
        future of the first send's task id."""
        known = self._tasks.get(message_id)
        if known is not None:
            self._tasks.move_to_end(message_id)
            return known
        self._tasks[message_id] = asyncio.get_running_loop().create_future()
        if len(self._tasks) > self._limit:
            _, oldest = self._tasks.popitem(last=False)
            if not oldest.done():
                oldest.set_result(None)
        return None

    def settle(self, message_id: str, task_id: str | None) -> None:
        """The first send ended: with a task, or with none (a repeat then runs anew)."""
        future = self._tasks.get(message_id)
        if task_id is None:
            self._tasks.pop(message_id, None)
        if future is not None and not future.done():
            future.set_result(task_id)

    async def first_task(self, pending: asyncio.Future[str | None]) -> str | None:
        """Wait for the first send of a repeated message; its task id (None: it made none)."""
        self.waiting += 1
        try:
            return await asyncio.shield(pending)
        finally:
            self.waiting -= 1
