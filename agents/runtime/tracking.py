"""Which tasks are still open: started here and not yet stored in a final state.

:class:`TrackingTaskStore` wraps the real task store and notices every save
that ends a task, so a graceful shutdown can wait until the outcome of each
task it let finish (or cancelled) is durable before it closes the store.

It also answers "not found" without a query for task ids this process has
just generated (:class:`FreshIds`) and not saved yet: the SDK looks a new task
up three times before its first save, ~1 ms each on SQLite.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict

from a2a.server.context import ServerCallContext
from a2a.server.id_generator import IDGenerator, IDGeneratorContext
from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskState

__all__ = ["FreshIds", "OpenTasks", "TrackingTaskStore"]

#: States after which a task needs nothing more from this process.
SETTLED_STATES = frozenset(
    (
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    )
)


class OpenTasks:
    """Ids of tasks this process started whose final state is not stored yet."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._ids)

    def opened(self, task_id: str) -> None:
        self._ids.add(task_id)
        self._idle.clear()

    def settled(self, task_id: str) -> None:
        self._ids.discard(task_id)
        if not self._ids:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no task is open (at once if none is)."""
        await self._idle.wait()


class FreshIds(IDGenerator):
    """Random task ids, remembered until their first save: no store holds them yet."""

    def __init__(self, limit: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def generate(self, context: IDGeneratorContext) -> str:
        task_id = str(uuid.uuid4())
        self._ids[task_id] = None
        if len(self._ids) > self._limit:  # requests that failed before any save
            self._ids.popitem(last=False)
        return task_id

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    def saved(self, task_id: str) -> None:
        self._ids.pop(task_id, None)


class TrackingTaskStore(TaskStore):
    """A task store that reports settled tasks to :class:`OpenTasks`."""

    def __init__(self, inner: TaskStore, open_tasks: OpenTasks, fresh: FreshIds) -> None:
        self.inner = inner
        self.open_tasks = open_tasks
        self.fresh = fresh

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self.inner.save(task, context)
        self.fresh.saved(task.id)
        if task.status.state in SETTLED_STATES:
            self.open_tasks.settled(task.id)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        if task_id in self.fresh:
            return None
        return await self.inner.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self.inner.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self.inner.delete(task_id, context)
