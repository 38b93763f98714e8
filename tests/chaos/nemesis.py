"""The nemesis: faults applied one after another while the load runs.

Each fault is an async function of the mesh that returns when the mesh has
been put back (a process restarted and ready, faults cleared). The run
records the span of time each took as a :class:`~tests.chaos.ledger.Window`,
so the ledger can say how requests fared during that fault.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx

from tests.chaos.ledger import Window
from tests.chaos.mesh import ChaosMesh, Proc

__all__ = ["Fault", "Nemesis", "faults"]

Fault = Callable[[ChaosMesh, httpx.AsyncClient], Awaitable[str]]


async def _kill_and_restart(proc: Proc, client: httpx.AsyncClient, down: float) -> None:
    await proc.kill()
    await anyio.sleep(down)
    proc.restarts += 1
    proc.start()
    await proc.wait_ready(client)


def kill_replica(kind: str, *, down: float = 1.0, seed: int = 3) -> Fault:
    """``kill -9`` a random replica of ``kind`` ("agent" or "tool"); restart it after ``down`` s."""
    rng = random.Random(seed)

    async def fault(mesh: ChaosMesh, client: httpx.AsyncClient) -> str:
        victim = rng.choice(mesh.of_kind(kind))
        await _kill_and_restart(victim, client, down)
        return f"kill -9 {victim.name}"

    return fault


def stop_registry(*, down: float = 10.0) -> Fault:
    """The registry gone for ``down`` s: the sqlite registry process killed and
    restarted on its file; on Consul, the Consul double frozen (SIGSTOP/SIGCONT)."""

    async def fault(mesh: ChaosMesh, client: httpx.AsyncClient) -> str:
        if mesh.consul is not None:
            os.kill(mesh.consul.pid, signal.SIGSTOP)
            try:
                await anyio.sleep(down)
            finally:
                os.kill(mesh.consul.pid, signal.SIGCONT)
            await mesh.consul.wait_ready(client)
            return f"Consul stopped {down:.0f}s"
        assert mesh.registry is not None
        await _kill_and_restart(mesh.registry, client, down)
        return f"registry killed {down:.0f}s"

    return fault


def slow_upstream(*, delay: float, hold: float) -> Fault:
    """Every /mcp request to ``calc-faulty`` waits ``delay`` s, for ``hold`` s."""

    async def fault(mesh: ChaosMesh, client: httpx.AsyncClient) -> str:
        mesh.faults.delay = delay
        try:
            await anyio.sleep(hold)
        finally:
            mesh.faults.clear()
        return f"calc-faulty +{delay:.1f}s"

    return fault


def failing_upstream(*, share: float, hold: float) -> Fault:
    """``share`` of /mcp answers of ``calc-faulty`` cut off mid-body, for ``hold`` s."""

    async def fault(mesh: ChaosMesh, client: httpx.AsyncClient) -> str:
        mesh.faults.abort = share
        try:
            await anyio.sleep(hold)
        finally:
            mesh.faults.clear()
        return f"calc-faulty aborts {share:.0%}"

    return fault


def calm(hold: float) -> Fault:
    async def fault(mesh: ChaosMesh, client: httpx.AsyncClient) -> str:
        await anyio.sleep(hold)
        return "no fault"

    return fault


def faults(*, registry_down: float = 10.0, hold: float = 4.0) -> list[tuple[str, Fault]]:
    """One round of every fault, named, between calm windows."""
    return [
        ("calm", calm(hold)),
        ("kill agent", kill_replica("agent")),
        ("kill tool", kill_replica("tool")),
        ("registry down", stop_registry(down=registry_down)),
        ("slow upstream", slow_upstream(delay=3.0, hold=hold)),
        ("failing upstream", failing_upstream(share=0.5, hold=hold)),
        ("recovered", calm(hold)),
    ]


@dataclass
class Nemesis:
    """Applies ``plan`` in order; :attr:`windows` says when each fault lasted."""

    plan: list[tuple[str, Fault]]
    #: Time after a fault ends during which its aftermath still counts to it.
    settle: float = 1.0
    windows: list[Window] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    async def run(self, mesh: ChaosMesh, client: httpx.AsyncClient) -> None:
        for name, fault in self.plan:
            start = time.monotonic()
            self.notes.append(await fault(mesh, client))
            await anyio.sleep(self.settle)
            self.windows.append(Window(name, start, time.monotonic()))
