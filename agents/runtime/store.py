"""The agent's task store: SQLite by default, in memory for tests, any SQLAlchemy URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a2a.server.tasks import DatabaseTaskStore, InMemoryTaskStore, TaskStore
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agents.runtime.config import MEMORY_STORE, AgentConfig

__all__ = ["TaskStorage"]


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

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
