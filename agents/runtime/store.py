"""The agent's task store: SQLite by default, in memory for tests, any SQLAlchemy URL.

A restarted agent reads back what its last process left: which ``messageId``
made which task (so a client's retry of a message that ran before the restart
is answered with that task, not run again), and, when the store is its own
(the default SQLite file), which tasks were still running, which it fails
(nothing runs them any more; a client polling one would wait forever).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from a2a.compat.v0_3.conversions import to_compat_task_status
from a2a.helpers.proto_helpers import new_text_message
from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabaseTaskStore, InMemoryTaskStore, TaskStore
from a2a.types import TaskState, TaskStatus
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agents.runtime.config import MEMORY_STORE, AgentConfig

__all__ = ["INTERRUPTED", "TaskStorage"]

#: The ``error`` code of a task failed because its process stopped while it ran.
INTERRUPTED = "agent-restarted"
_RUNNING = (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
#: How a stored status names them: A2A 1.0's names, and 0.3's (stores written before).
_RUNNING_NAMES = [TaskState.Name(s) for s in _RUNNING] + [
    to_compat_task_status(TaskStatus(state=s)).state.value for s in _RUNNING
]


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL: readers never wait for the writer. synchronous=NORMAL in WAL mode
    # survives a killed process (only a power cut may drop the last commits).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class TaskStorage:
    """A task store and the engine behind it; :meth:`open` before use, :meth:`close` after."""

    def __init__(self, config: AgentConfig) -> None:
        self._path: Path | None = None
        self._engine: AsyncEngine | None = None
        self._db: DatabaseTaskStore | None = None
        self.store: TaskStore
        if config.task_store == MEMORY_STORE:
            self.store = InMemoryTaskStore()
            return
        if config.task_store:
            self._engine = create_async_engine(config.task_store, pool_pre_ping=True)
        else:
            self._path = config.task_db_path
            # One connection: SQLite has one writer at a time, and several
            # connections contend through busy-timeout sleeps (a p99 of ~1 s at
            # 16 concurrent messages); a pool of one queues them fairly instead.
            self._engine = create_async_engine(
                f"sqlite+aiosqlite:///{self._path}", pool_size=1, max_overflow=0
            )
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        self._db = DatabaseTaskStore(self._engine)
        self.store = self._db

    @property
    def description(self) -> str:
        """Where tasks go, for logs (no credentials)."""
        if self._path is not None:
            return str(self._path)
        if self._engine is not None:
            return self._engine.url.render_as_string(hide_password=True)
        return "memory"

    async def open(self) -> None:
        """Create the data directory and the schema (fails fast on a bad store)."""
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._db is not None:
            await self._db.initialize()

    async def recent_messages(self, limit: int) -> list[tuple[str, str]]:
        """``(messageId, task id)`` of the newest ``limit`` tasks, oldest first,
        from the message that started each (the anonymous caller's tasks: agents
        do not authenticate callers themselves)."""
        if self._db is None:
            return []  # a memory store starts empty
        model = self._db.task_model
        owner = self._db.owner_resolver(ServerCallContext())
        # The newest by the (owner, last_updated) index, then their first
        # messages: JSON is read for those only.
        newest = (
            select(model.id, model.last_updated)
            .where(model.owner == owner)
            .order_by(model.last_updated.desc(), model.id.desc())
            .limit(limit)
            .subquery()
        )
        first = model.history[0]["messageId"].as_string()
        query = (
            select(first, model.id)
            .join(newest, newest.c.id == model.id)
            .order_by(newest.c.last_updated, newest.c.id)
        )
        async with self._db.async_session_maker() as session:
            rows = (await session.execute(query)).all()
        return [(str(message), str(task)) for message, task in rows if message]

    async def fail_interrupted(self) -> int:
        """Fail the tasks an earlier process of this agent left running; how many.

        Only for the agent's own SQLite file: replicas sharing a store run each
        other's tasks, which are not this process's to end. Tasks are those of
        the anonymous caller, as in :meth:`recent_messages`.
        """
        if self._path is None or self._db is None:
            return 0
        model = self._db.task_model
        context = ServerCallContext()
        running = select(model.id).where(
            model.owner == self._db.owner_resolver(context),
            model.status["state"].as_string().in_(_RUNNING_NAMES),
        )
        async with self._db.async_session_maker() as session:
            ids = (await session.execute(running)).scalars().all()
        failed = 0
        for task_id in ids:
            task = await self._db.get(task_id, context)
            if task is None:
                continue
            text = "the agent stopped while this task ran; send it as a new message"
            message = new_text_message(text, task.context_id, task.id)
            message.metadata.update({"error": INTERRUPTED})
            status = TaskStatus(state=TaskState.TASK_STATE_FAILED, message=message)
            status.timestamp.FromDatetime(datetime.now(UTC))
            task.status.CopyFrom(status)
            await self._db.save(task, context)
            failed += 1
        return failed

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
