"""The embedded default: registrations in a SQLite file that survives restarts.

Reads are served from memory (the engine of :mod:`registry.backends.memory`);
every write is committed to SQLite before it is acknowledged. In WAL mode with
``synchronous=NORMAL`` a committed transaction survives the death of the
process (``kill -9``); ``synchronous="FULL"`` also survives power loss, at the
cost of an fsync per write. The status of each check is written when it
changes (not at each heartbeat): after a restart an instance keeps it, with a
fresh TTL, as a Consul agent does; a store written before it was kept (or a
lost write of it) restarts that instance's checks critical.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Literal, Self

from registry.backends.base import BackendOptions
from registry.backends.memory import Clock, MemoryBackend, _Entry
from registry.errors import BackendUnavailable
from registry.models import InstanceKey, Registration

__all__ = ["SqliteBackend"]

logger = logging.getLogger("meshgate.registry.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    service TEXT NOT NULL,
    id TEXT NOT NULL,
    registration TEXT NOT NULL,
    owner TEXT,
    create_index INTEGER NOT NULL,
    modify_index INTEGER NOT NULL,
    checks TEXT,
    PRIMARY KEY (service, id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteBackend(MemoryBackend):
    """Durable registrations in one SQLite file (``--data``)."""

    name = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        sync = options.settings.get("synchronous", "NORMAL").upper()
        if sync not in ("NORMAL", "FULL"):
            raise ValueError(f"sqlite synchronous must be NORMAL or FULL, not {sync!r}")
        return cls(options.data_path, synchronous="FULL" if sync == "FULL" else "NORMAL")

    async def _load(self) -> None:
        if self.path.parent != Path():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: each write below is its own explicit transaction.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(instances)")}
        if "checks" not in columns:  # a store written before check states were kept
            db.execute("ALTER TABLE instances ADD COLUMN checks TEXT")
        self._db = db
        row = db.execute("SELECT value FROM meta WHERE key = 'index'").fetchone()
        stored_index = int(row[0]) if row else 1
        for service, id_, body, owner, create_index, modify_index, checks in db.execute(
            "SELECT service, id, registration, owner, create_index, modify_index, checks "
            "FROM instances"
        ):
            entry = _Entry(
                service=service,
                id=id_,
                registration=Registration.model_validate_json(body),
                owner=owner,
                create_index=create_index,
                modify_index=modify_index,
            )
            self._restore(entry, checks)
        # Restored health is a change in itself: move the index past anything
        # a watcher saw before the restart.
        self._index = max(self._index, stored_index) + 1
        for service in self._service_index:
            self._service_index[service] = self._index
        for kind in self._kind_index:
            self._kind_index[kind] = self._index
        self._persist_index(self._index)

    async def close(self) -> None:
        await super().close()
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise BackendUnavailable("the sqlite registry store is not open")
        return self._db

    def _persist_put(self, entry: _Entry) -> None:
        self._write(
            "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.service,
                entry.id,
                entry.registration.model_dump_json(),
                entry.owner,
                entry.create_index,
                entry.modify_index,
                entry.stored_checks(),
            ),
        )

    def _persist_checks(self, entry: _Entry) -> None:
        # Best effort: called from heartbeats and from the reaper, after the
        # change is made in memory. Lost, it costs a critical start after a restart.
        try:
            self._write(
                "UPDATE instances SET checks = ?, modify_index = ? WHERE service = ? AND id = ?",
                (entry.stored_checks(), entry.modify_index, entry.service, entry.id),
            )
        except BackendUnavailable as exc:
            logger.warning("check state of %s/%s not stored: %s", entry.service, entry.id, exc)

    def _persist_delete(self, key: InstanceKey) -> None:
        self._write("DELETE FROM instances WHERE service = ? AND id = ?", key)

    def _persist_index(self, index: int) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES ('index', ?)", (index,))

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self._conn().execute(sql, params)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"the sqlite registry store failed a write: {exc}") from exc
