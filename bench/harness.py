"""What the process benchmarks share: meshgate processes, timed loops, percentiles.

Benches run as scripts (``python bench/NAME.py``), so this module is imported
from the script's own folder.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "ROOT",
    "Call",
    "Process",
    "Row",
    "cpu_seconds",
    "drive",
    "free_port",
    "healthz",
    "percentile",
]

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Process:
    """A meshgate process started by this bench and stopped by its PID."""

    def __init__(self, name: str, args: list[str], port: int) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "meshgate", "--log-level", "warning", *args]
        self.proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)

    async def ready(self, path: str = "/readyz", within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.returncode}")
                try:
                    if (await client.get(self.url + path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.url}{path} did not answer 200 within {within} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Row:
    op: str
    concurrency: int
    latencies: list[float]
    elapsed: float
    server: str  # the process whose CPU is measured
    cpu: float  # its CPU seconds over the run

    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1e3

    def cells(self) -> list[str]:
        n = len(self.latencies)
        return [
            self.op,
            str(self.concurrency),
            str(n),
            f"{n / self.elapsed:.0f}",
            f"{self.p50_ms():.2f}",
            f"{percentile(self.latencies, 99) * 1e3:.2f}",
            self.server,
            f"{self.cpu / n * 1e6:.0f}",
        ]


Call = Callable[[httpx.AsyncClient], Awaitable[None]]


async def drive(
    op: str, proc: Process, client: httpx.AsyncClient, call: Call, count: int, concurrency: int
) -> Row:
    for _ in range(20):  # warm up connections and caches
        await call(client)
    latencies: list[float] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call(client)
            latencies.append(time.perf_counter() - started)

    cpu_before, started = cpu_seconds(proc.proc.pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(proc.proc.pid) - cpu_before
    return Row(op, concurrency, latencies, elapsed, proc.name, cpu)


def healthz(url: str) -> Call:
    async def call(client: httpx.AsyncClient) -> None:
        if (await client.get(url + "/healthz")).status_code != 200:
            raise RuntimeError("healthz failed")

    return call
