"""The client's ledger: every request sent, how it ended, and what that proves.

Each :class:`Entry` is written when a request is sent and closed exactly once
with an outcome: ``ok`` or an explicit error class (an HTTP status, a
JSON-RPC error code, a transport error). :meth:`Ledger.violations` lists what
must never happen: a request still open (silent loss), one answered past its
deadline (a hang), a message id that completed more than one task.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["OK", "Entry", "Ledger", "Window", "WindowStats", "executions", "percentile"]

OK = "ok"


@dataclass
class Entry:
    """One logical request (its retries included) as the client saw it."""

    number: int
    kind: str  # "a2a" or "mcp"
    #: The A2A messageId every attempt carries ("" for MCP).
    message_id: str
    started: float
    deadline: float
    ended: float = 0.0
    outcome: str = ""
    attempts: int = 0
    #: The task the answer named (A2A).
    task_id: str = ""
    #: The start of the last answer's body, when it was not a success (for failed.jsonl).
    detail: str = ""

    def close(self, outcome: str, *, task_id: str = "", detail: str = "") -> None:
        if self.ended:
            raise AssertionError(f"request {self.number} closed twice")
        self.ended = time.monotonic()
        self.outcome = outcome
        self.task_id = task_id
        self.detail = detail

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class Window:
    """A named span of time (a fault, or the calm before them)."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class WindowStats:
    """What the requests started in one window came to."""

    name: str
    requests: int
    ok: int
    errors: Mapping[str, int]
    p50: float
    p99: float
    max: float

    @property
    def success_rate(self) -> float:
        return self.ok / self.requests if self.requests else math.nan


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Ledger:
    """Every request of a run, in the order sent."""

    #: How late past its deadline an answer may arrive before it counts as a hang
    #: (the event loop's own scheduling, under a loaded 2-core machine).
    slack: float = 0.5
    entries: list[Entry] = field(default_factory=list)

    def open(self, kind: str, message_id: str, deadline: float) -> Entry:
        now = time.monotonic()
        entry = Entry(len(self.entries), kind, message_id, now, now + deadline)
        self.entries.append(entry)
        return entry

    def stats(self, window: Window, kind: str | None = None) -> WindowStats:
        chosen = [
            e
            for e in self.entries
            if e.ended and window.start <= e.started < window.end and kind in (None, e.kind)
        ]
        latencies = [e.latency for e in chosen]
        errors = Counter(e.outcome for e in chosen if e.outcome != OK)
        return WindowStats(
            window.name,
            len(chosen),
            sum(e.outcome == OK for e in chosen),
            dict(errors.most_common()),
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            max(latencies, default=math.nan),
        )

    def violations(self, executions: Mapping[str, int] | None = None) -> list[str]:
        """What broke a promise; ``executions`` counts completed tasks per message id."""
        found: list[str] = []
        for e in self.entries:
            if not e.ended:
                found.append(f"request {e.number} ({e.kind}) never ended: lost")
            elif e.ended > e.deadline + self.slack:
                late = e.ended - e.deadline
                found.append(f"request {e.number} ({e.kind}) ended {late:.2f}s past its deadline")
            elif not e.outcome:
                found.append(f"request {e.number} ({e.kind}) ended without an outcome")
        for message_id, count in (executions or {}).items():
            if count > 1:
                found.append(f"message {message_id} completed {count} tasks")
        return found


def executions(message_ids: Iterable[str]) -> dict[str, int]:
    """How many times each message id occurs (one occurrence per completed task)."""
    return dict(Counter(message_ids))
