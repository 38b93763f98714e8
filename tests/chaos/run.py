"""A chaos run: the mesh up, the mixed load on, the nemesis through its plan,
then the ledger's verdict and a table of how each fault window went."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from tests.chaos.ledger import OK, Ledger, Window, WindowStats
from tests.chaos.load import LoadSettings, MixedLoad
from tests.chaos.mesh import MeshSettings, chaos_mesh
from tests.chaos.nemesis import Fault, Nemesis

__all__ = ["Report", "run_chaos"]


@dataclass(frozen=True)
class Report:
    """What a run measured and what it broke."""

    backend: str
    rows: list[WindowStats]
    total: WindowStats
    during_faults: WindowStats
    violations: list[str]
    notes: list[str]

    def table(self) -> str:
        head = f"{'window':<18} {'reqs':>6} {'ok %':>7} {'p50 ms':>8} {'p99 ms':>8}  errors"
        lines = [f"chaos run, registry backend: {self.backend}", head, "-" * len(head)]
        for row in (*self.rows, self.during_faults, self.total):
            errors = ", ".join(f"{k} {v}" for k, v in row.errors.items()) or "-"
            lines.append(
                f"{row.name:<18} {row.requests:>6} {_pct(row.success_rate):>7} "
                f"{_ms(row.p50):>8} {_ms(row.p99):>8}  {errors}"
            )
        lines.append("faults: " + "; ".join(self.notes))
        lines.append(f"violations: {len(self.violations)}")
        lines += [f"  {v}" for v in self.violations[:20]]
        return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{1000 * value:.0f}"


async def run_chaos(
    mesh_settings: MeshSettings,
    plan: list[tuple[str, Fault]],
    logs: Path,
    *,
    concurrency: int = 8,
    deadline: float = 8.0,
) -> Report:
    """Run ``plan`` against a fresh mesh under load; the report of the ledger."""
    client = httpx.AsyncClient(
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency),
    )
    nemesis = Nemesis(plan)
    async with client, chaos_mesh(mesh_settings, logs) as mesh:
        load = MixedLoad(
            LoadSettings(mesh.gateway, concurrency=concurrency, deadline=deadline), client
        )
        monitor = httpx.AsyncClient(timeout=2, trust_env=False)
        async with monitor, anyio.create_task_group() as tg:
            tg.start_soon(load.run)
            try:
                await nemesis.run(mesh, monitor)
            finally:
                load.stop()
        ledger: Ledger = load.ledger
        executions = mesh.executions()
    first = nemesis.windows[0]
    _write_failures(ledger, nemesis.windows, logs / "failed.jsonl")
    faulted = [w for w in nemesis.windows if w.name not in ("calm", "recovered")]
    rows = [ledger.stats(w) for w in nemesis.windows]
    total = ledger.stats(Window("all", first.start, math.inf))
    during = _merged(ledger, faulted)
    return Report(
        mesh_settings.backend,
        rows,
        total,
        during,
        ledger.violations(executions),
        nemesis.notes,
    )


def _write_failures(ledger: Ledger, windows: list[Window], path: Path) -> None:
    """Every request that did not end ``ok``, one JSON object a line (the window it
    started in; times in seconds from the first window's start)."""
    start = windows[0].start
    with path.open("w") as out:
        for e in ledger.entries:
            if e.outcome != OK:
                window = next((w.name for w in windows if w.start <= e.started < w.end), "")
                record = {
                    "number": e.number,
                    "window": window,
                    "kind": e.kind,
                    "message_id": e.message_id,
                    "outcome": e.outcome,
                    "attempts": e.attempts,
                    "started": round(e.started - start, 3),
                    "seconds": round(e.latency, 3),
                    "detail": e.detail,
                }
                out.write(json.dumps(record) + "\n")


def _merged(ledger: Ledger, windows: list[Window]) -> WindowStats:
    """Stats of the requests started in any of ``windows``."""
    picked = Ledger(ledger.slack)
    picked.entries = [
        e for e in ledger.entries if any(w.start <= e.started < w.end for w in windows)
    ]
    return picked.stats(Window("during faults", -math.inf, math.inf))
