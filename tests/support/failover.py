"""Steady A2A load through a gateway, and what to observe while replicas die.

:class:`SteadyLoad` keeps a fixed number of ``SendMessage`` requests in
flight and records every one (start, end, status, task id). Which replica
served a request is found afterwards in the replicas' own task stores
(:func:`task_owners`), and the replicas' and the gateway's ``/metrics`` tell
what happened meanwhile (:func:`scrape`). Nothing here changes product code.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import MeshProcess

__all__ = [
    "Outcome",
    "Samples",
    "SteadyLoad",
    "metric",
    "scrape",
    "task_owners",
    "wait_ready",
]

TEXT = (
    "Meshgate routes messages between agents. The gateway watches the registry. "
    "Replicas of one agent share a service name. A replica that dies is ejected. "
    "When it comes back it receives traffic again. Clients should not notice."
)


@dataclass
class Outcome:
    """One request of the load, as its client saw it."""

    number: int
    started: float
    ended: float = 0.0
    #: HTTP status, ``None`` when the gateway could not be reached at all.
    status: int | None = None
    task_id: str | None = None
    state: str | None = None
    #: The JSON-RPC error (code and message) or the transport error.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.state == "TASK_STATE_COMPLETED"

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class SteadyLoad:
    """``concurrency`` workers sending ``SendMessage`` to ``url`` back to back.

    Bounded twice: at most ``max_requests`` requests and ``max_seconds`` of
    sending, whatever the test does; :meth:`stop` ends it earlier.
    """

    client: httpx.AsyncClient
    url: str
    concurrency: int = 8
    max_requests: int = 20_000
    max_seconds: float = 25.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stopped: bool = False
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def stop(self) -> None:
        self._stopped = True

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ended]

    def since(self, moment: float) -> list[Outcome]:
        """Finished requests that started after ``moment``."""
        return [o for o in self.done if o.started > moment]

    async def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(self._worker, deadline)

    async def _worker(self, deadline: float) -> None:
        while not self._stopped and time.monotonic() < deadline:
            number = next(self._numbers)
            if number >= self.max_requests:
                return
            outcome = Outcome(number, time.monotonic())
            self.outcomes.append(outcome)
            await self._send(outcome)

    async def _send(self, outcome: Outcome) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": outcome.number,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": str(uuid.uuid4()),
                    "role": "ROLE_USER",
                    "parts": [{"text": TEXT}],
                },
                "metadata": {"skill": "summarize"},
            },
        }
        try:
            response = await self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.ended = time.monotonic()
            return
        outcome.ended = time.monotonic()
        outcome.status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            outcome.error = response.text[:200]
            return
        if "error" in answer:
            error = answer["error"]
            outcome.error = f"{error.get('code')}: {error.get('message')}"
            return
        task = (answer.get("result") or {}).get("task") or {}
        outcome.task_id = task.get("id")
        outcome.state = (task.get("status") or {}).get("state")


# -- observation ---------------------------------------------------------------

#: Samples of one scrape: ``(sample name, sorted label pairs) -> value``.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    """The samples of ``url``'s ``/metrics`` (an empty dict if it does not answer)."""
    try:
        response = await client.get(url + "/metrics", timeout=2)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, pairs), v in samples.items() if n == name and wanted <= set(pairs))


async def wait_ready(
    client: httpx.AsyncClient, proc: MeshProcess, *, within: float = 20.0
) -> float:
    """Poll ``/readyz`` until 200 (without blocking the loop); return when it answered."""
    deadline = time.monotonic() + within
    while True:
        if proc.proc.poll() is not None:
            tail = proc.log.read_text()[-2000:]
            raise AssertionError(f"{proc.name} exited with {proc.proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(proc.url + "/readyz", timeout=1)).status_code == 200:
                return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{proc.name} was not ready within {within}s")
        await anyio.sleep(0.01)


def task_owners(stores: Mapping[str, Path]) -> dict[str, str]:
    """Task id -> the instance whose SQLite task store (``{instance: file}``) holds it."""
    owners: dict[str, str] = {}
    for instance, path in stores.items():
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows: list[Any] = db.execute("SELECT id FROM tasks").fetchall()
        for (task_id,) in rows:
            owners[str(task_id)] = instance
    return owners
