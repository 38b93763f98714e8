"""The mesh a chaos run attacks: real processes, plus one tool server in this
process behind a :class:`~tests.chaos.faults.FaultInjector`.

Registry (``sqlite`` backend, or ``consul`` on a Consul double process), one
gateway with short upstream timeouts, ``agents`` summarizer replicas and
``tools`` calc replicas as ``meshgate`` processes, and ``calc-faulty``: a calc
served here whose faults the nemesis flips. Every process is stopped by the
PID it got.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx

from mcp_servers.calc import create_server
from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings
from mcp_servers.runtime import build_tool_server_app
from registry.models import CheckSpec
from tests.chaos.faults import FaultInjector, Faults
from tests.support.live import free_port, serve

__all__ = ["ChaosMesh", "MeshSettings", "Proc", "chaos_mesh"]

#: How the in-process calc registers: quick checks, so a faulty one is seen soon.
CHECK = CheckSpec(ttl_seconds=5, interval_seconds=1, deregister_critical_after_seconds=60)


@dataclass(frozen=True)
class MeshSettings:
    """What to run."""

    backend: str = "sqlite"  # or "consul"
    agents: int = 2
    tools: int = 2
    #: The gateway's upstream timeouts: a slow upstream becomes an explicit 504.
    connect_timeout: float = 0.5
    read_timeout: float = 2.0
    #: More ``meshgate gateway`` flags.
    gateway_args: tuple[str, ...] = ()


@dataclass
class Proc:
    """One child process, restartable with the same command (same port and name)."""

    name: str
    command: list[str]
    url: str
    logs: Path
    kind: str = "other"
    ready_path: str = "/readyz"
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        with (self.logs / f"{self.name}.log").open("ab") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def wait_ready(self, client: httpx.AsyncClient, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = (self.logs / f"{self.name}.log").read_text()[-2000:]
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(self.url + self.ready_path, timeout=1)
                if response.status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} was not ready within {within}s")
            await anyio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL and reap (every socket of it is closed when this returns)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            await anyio.to_thread.run_sync(self.proc.wait)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class ChaosMesh:
    """The running mesh: its processes, its gateway URL, the faulty tool server's faults."""

    settings: MeshSettings
    logs: Path
    gateway: str = ""
    registry: Proc | None = None
    consul: Proc | None = None
    procs: list[Proc] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def of_kind(self, kind: str) -> list[Proc]:
        return [p for p in self.procs if p.kind == kind]

    def executions(self) -> Counter[str]:
        """Completed tasks per messageId, across every summarizer replica's task store."""
        found: Counter[str] = Counter()
        for path in (self.logs / "tasks").glob("*.db"):
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                rows: list[Any] = db.execute("SELECT status, history FROM tasks").fetchall()
            for status, history in rows:
                if "COMPLETED" not in str(status) or not history:
                    continue
                first = _loads(history)[0]
                found[str(first.get("messageId") or first.get("message_id"))] += 1
        return found


def _loads(text: Any) -> list[dict[str, Any]]:
    import json

    value = json.loads(text) if isinstance(text, str | bytes) else text
    return list(value) if isinstance(value, list) else []


def _meshgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshgate", "--log-json", *args]


def _ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@contextlib.asynccontextmanager
async def chaos_mesh(settings: MeshSettings, logs: Path) -> AsyncIterator[ChaosMesh]:
    """Start the mesh, wait until the gateway routes to every part, stop it all on exit."""
    s = settings
    ports = iter(_ports(4 + s.agents + s.tools))
    mesh = ChaosMesh(s, logs)
    registry_url = f"http://127.0.0.1:{next(ports)}"
    mesh.gateway = f"http://127.0.0.1:{next(ports)}"
    registry_args = ["registry", "--port", registry_url.rsplit(":", 1)[1]]
    registry_args += ["--allow-cidr", "127.0.0.0/8"]
    consul_port = next(ports)
    if s.backend == "consul":
        mesh.consul = Proc(
            "consul",
            [sys.executable, "-m", "tests.chaos.consul_process", str(consul_port)],
            f"http://127.0.0.1:{consul_port}",
            logs,
            kind="consul",
            ready_path="/v1/agent/self",
        )
        registry_args += ["--backend", "consul", "--consul-addr", mesh.consul.url]
    else:
        registry_args += ["--backend", "sqlite", "--data", str(logs / "registry.db")]
    mesh.registry = Proc("registry", _meshgate(*registry_args), registry_url, logs, "registry")
    gateway = Proc(
        "gateway",
        _meshgate(
            *("gateway", "--port", mesh.gateway.rsplit(":", 1)[1], "--registry", registry_url),
            *("--connect-timeout", str(s.connect_timeout), "--read-timeout", str(s.read_timeout)),
            *s.gateway_args,
        ),
        mesh.gateway,
        logs,
        "gateway",
    )
    for i in range(s.agents):
        port = next(ports)
        name = f"summarizer-{i}"
        args = ("agent", "summarizer", "--port", str(port), "--instance", name)
        mesh.procs.append(
            Proc(
                name,
                _meshgate(*args, "--data", str(logs / "tasks"), "--registry", registry_url),
                f"http://127.0.0.1:{port}",
                logs,
                "agent",
            )
        )
    for i in range(s.tools):
        port = next(ports)
        name = f"calc-{i}"
        args = ("mcp-server", "calc", "--port", str(port), "--instance", name)
        mesh.procs.append(
            Proc(
                name,
                _meshgate(*args, "--registry", registry_url),
                f"http://127.0.0.1:{port}",
                logs,
                "tool",
            )
        )
    monitor = httpx.AsyncClient(timeout=2, trust_env=False)
    started: list[Proc] = []
    try:
        async with monitor, contextlib.AsyncExitStack() as stack:
            for proc in (mesh.consul, mesh.registry, gateway, *mesh.procs):
                if proc is None:
                    continue
                proc.start()
                started.append(proc)
                if proc.kind in ("consul", "registry"):
                    await proc.wait_ready(monitor)
            for proc in started:
                await proc.wait_ready(monitor)
            faulty_port = free_port()
            config = HostingConfig(
                service="calc",
                instance="calc-faulty",
                port=faulty_port,
                registry_url=registry_url,
                check=CHECK,
            )
            app = build_tool_server_app(create_server(), config, McpHttpSettings())
            await stack.enter_async_context(
                serve(FaultInjector(app, mesh.faults), port=faulty_port)
            )
            await _routable(monitor, mesh.gateway, s.agents + s.tools + 1)
            yield mesh
    finally:
        for proc in reversed(started):
            proc.stop()


async def _routable(client: httpx.AsyncClient, gateway: str, count: int) -> None:
    """Wait until the gateway's table routes ``count`` instances."""
    deadline = time.monotonic() + 30
    name = "meshgate_gateway_route_table_instances"
    total = 0.0
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            text = (await client.get(gateway + "/metrics")).text
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(name + "{") and 'routable="true"' in line
            )
            if total >= count:
                return
        await anyio.sleep(0.05)
    raise AssertionError(f"the gateway routes {total} instances, not {count}, after 30 s")
