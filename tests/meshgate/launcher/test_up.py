"""``meshgate up`` as a user runs it: a real process starting real components."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client

from meshgate.launcher import accepts_connections

pytestmark = pytest.mark.e2e

#: Registry, gateway and one tool server, every port picked at start.
SMALL_MESH = """
[[component]]
kind = "registry"

[[component]]
kind = "gateway"

[[component]]
kind = "mcp-server"
name = "calc"
"""

Event = dict[str, Any]


class Up:
    """``meshgate --log-json up`` in a directory, its output in ``up.log`` there."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.log = cwd / "up.log"
        command = [sys.executable, "-m", "meshgate", "--log-json", "up", *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def lines(self) -> list[Event]:
        entries = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def events(self, kind: str | None = None) -> list[Event]:
        """The launcher's own events (``kind`` only, if given)."""
        return [
            e
            for e in self.lines()
            if e.get("component") == "meshgate" and kind in (None, e.get("event"))
        ]

    def wait_for(self, predicate: Callable[[Event], bool], within: float) -> Event:
        deadline = time.monotonic() + within
        while True:
            for event in self.events():
                if predicate(event):
                    return event
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no such event (exit status {self.proc.returncode}):\n"
                    + self.log.read_text()[-3000:]
                )
            time.sleep(0.05)

    def pids(self) -> set[int]:
        return {e["pid"] for e in self.events("started")}

    def ports(self) -> set[int]:
        return {e["port"] for e in self.events("started")}

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=15)


@contextlib.contextmanager
def running_up(cwd: Path, *args: str) -> Iterator[Up]:
    up = Up(cwd, *args)
    try:
        yield up
    finally:
        if up.proc.poll() is None:  # a failed test: leave nothing behind either
            up.proc.kill()
            up.proc.wait()
        for pid in up.pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_nothing_left(up: Up) -> None:
    """No process it started runs and no port it used accepts connections (polled briefly)."""
    deadline = time.monotonic() + 3
    while True:
        pids = {p for p in up.pids() if alive(p)}
        ports = {p for p in up.ports() if accepts_connections(p)}
        if not pids and not ports:
            return
        assert time.monotonic() < deadline, f"still alive: {pids}, still listening: {ports}"
        time.sleep(0.05)


async def evaluate_through_the_gateway(mcp_url: str) -> types.CallToolResult:
    async with Client(mcp_url, mode="2026-07-28", cache=None) as client:
        deadline = time.monotonic() + 10
        while "calc__evaluate" not in {t.name for t in (await client.list_tools()).tools}:
            assert time.monotonic() < deadline, "calc's tools never reached the gateway"
            await anyio.sleep(0.1)
        return await client.call_tool("calc__evaluate", {"expression": "17*23"})


def test_up_serves_the_mesh_and_ctrl_c_leaves_no_process_or_port(tmp_path: Path) -> None:
    (tmp_path / "mesh.toml").write_text(SMALL_MESH)
    with running_up(tmp_path) as up:
        summary = up.wait_for(lambda e: e["event"] == "up", within=30)
        gateway = summary["urls"]["gateway"]
        assert summary["urls"]["mcp"] == gateway + "/mcp"
        assert summary["urls"]["dashboard"] == gateway + "/ui"
        claude = summary["claude_desktop_config"]["mcpServers"]["meshgate"]
        assert claude["args"] == ["mcp-stdio", "--gateway", gateway]
        ready = [e["name"] for e in up.events("ready")]
        # The registry first: the others need it (and only it) to start.
        assert ready[0] == "registry"
        assert sorted(ready[1:]) == ["calc", "gateway"]
        assert len(up.pids()) == 3
        assert httpx.get(gateway + "/readyz").status_code == 200

        result = anyio.run(evaluate_through_the_gateway, summary["urls"]["mcp"])
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["value"] == 391

        began = time.monotonic()
        assert up.stop(signal.SIGINT) == 0
        assert time.monotonic() - began < 10
        stopped = [(e["name"], e["status"]) for e in up.events("stopped")]
        assert stopped == [("calc", 0), ("gateway", 0), ("registry", 0)]
        assert up.events("down")[0]["seconds"] < 10
        assert_nothing_left(up)
        assert (tmp_path / ".meshgate" / "registry.db").is_file()


def test_a_killed_process_is_restarted_and_sigterm_stops_everything(tmp_path: Path) -> None:
    (tmp_path / "mesh.toml").write_text(SMALL_MESH)
    with running_up(tmp_path) as up:
        up.wait_for(lambda e: e["event"] == "up", within=30)
        calc = next(e for e in up.events("started") if e["name"] == "calc")
        os.kill(calc["pid"], signal.SIGKILL)

        again = up.wait_for(lambda e: e["event"] == "ready" and e["restarts"] == 1, within=15)
        assert again["name"] == "calc"
        assert again["pid"] != calc["pid"]
        assert again["url"] == f"http://127.0.0.1:{calc['port']}"  # same port, same instance
        restarting = up.events("restarting")
        assert [e["reason"] for e in restarting] == ["was killed by SIGKILL"]
        assert httpx.get(again["url"] + "/readyz").status_code == 200

        assert up.stop(signal.SIGTERM) == 0
        assert_nothing_left(up)


def test_a_component_that_cannot_start_fails_up_with_its_last_lines(tmp_path: Path) -> None:
    broken = SMALL_MESH.replace('name = "calc"', 'name = "calc"\nmodule = "no_such_pkg:server"')
    (tmp_path / "mesh.toml").write_text(broken)
    with running_up(tmp_path) as up:
        assert up.proc.wait(timeout=30) == 1
        failed = up.events("failed")
        assert [e["name"] for e in failed] == ["calc"]
        assert failed[0]["reason"] == "exited with status 2 before it was ready"
        assert any("cannot import 'no_such_pkg'" in line for line in failed[0]["tail"])
        stopped = [e["name"] for e in up.events("stopped")]
        assert stopped == ["gateway", "registry"]
        assert_nothing_left(up)


def test_children_stop_when_the_launcher_is_killed(tmp_path: Path) -> None:
    # SIGKILL gives the launcher no chance to stop its children in order; each
    # asked the kernel for a SIGTERM when it goes, and stops as if asked.
    (tmp_path / "mesh.toml").write_text(SMALL_MESH)
    with running_up(tmp_path) as up:
        up.wait_for(lambda e: e["event"] == "up", within=30)
        assert len(up.pids()) == 3
        up.proc.kill()
        up.proc.wait()
        assert_nothing_left(up)
