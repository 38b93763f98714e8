"""Fail-open ``/mcp`` with real processes: a tool server killed with SIGKILL and restarted.

A registry, a gateway and two tool servers run as ``meshgate`` processes. The
killed server's tools must leave ``tools/list`` within 2 s while the other's
keep working; a session client hears ``list_changed`` at the removal and again
at the return; a stateless 2026-07-28 client sees each fresh list.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
import pytest
from mcp import Client

from tests.support.live import free_port
from tests.support.polling import eventually
from tests.support.processes import MeshProcess, processes

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

KNOWLEDGE = {"knowledge__search", "knowledge__get_topic"}
CALC = {"calc__evaluate", "calc__statistics"}


class Mesh:
    """The processes of one test and how to (re)start a tool server."""

    def __init__(self, started: list[MeshProcess], logs: Path) -> None:
        self.started = started
        self.logs = logs
        self.registry_url = self._start("registry", ["registry", "--backend", "memory"])
        self.gateway_url = ""

    def _start(self, name: str, args: list[str]) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        extra = ["--allow-cidr", "127.0.0.0/8"] if name == "registry" else []
        process = MeshProcess(name, [*args, "--port", str(port), *extra], url, self.logs)
        self.started.append(process)
        return url

    def tool_server(self, name: str, run: int = 1) -> MeshProcess:
        self._start(f"{name}-{run}", ["mcp-server", name, "--registry", self.registry_url])
        return self.started[-1]

    def gateway(self) -> MeshProcess:
        self.gateway_url = self._start("gateway", ["gateway", "--registry", self.registry_url])
        return self.started[-1]


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    with processes() as started:
        mesh = Mesh(started, tmp_path)
        started[0].wait_ready()
        mesh.tool_server("knowledge")
        mesh.tool_server("calc")
        mesh.gateway()
        for process in started[1:]:
            process.wait_ready()
        yield mesh


async def test_a_killed_tool_server_leaves_and_returns_while_the_rest_keeps_working(
    mesh: Mesh,
) -> None:
    changed = 0

    async def on_message(message: Any) -> None:
        nonlocal changed
        if isinstance(message, types.ToolListChangedNotification):
            changed += 1

    url = mesh.gateway_url + "/mcp"
    async with (
        Client(url, mode="2026-07-28", cache=None) as stateless,
        Client(url, mode="legacy", cache=None, message_handler=on_message) as session,
    ):

        async def names() -> set[str]:
            return {t.name for t in (await stateless.list_tools()).tools}

        async def heard() -> int:
            return changed

        await eventually(names, lambda n: n >= (KNOWLEDGE | CALC), within=20)
        seen = changed

        knowledge = next(p for p in mesh.started if p.name == "knowledge-1")
        knowledge.proc.kill()  # SIGKILL: no deregistration, nothing said
        killed = time.monotonic()
        remaining = await eventually(names, lambda n: not (n & KNOWLEDGE), within=2)
        left_after = time.monotonic() - killed
        assert left_after < 2.0
        assert remaining >= CALC
        seen = await eventually(heard, lambda n: n > seen, within=5)
        assert not ({t.name for t in (await session.list_tools()).tools} & KNOWLEDGE)
        for client in (stateless, session):
            result = await client.call_tool("calc__evaluate", {"expression": "6*7"})
            assert result.structured_content is not None
            assert result.structured_content["value"] == 42

        restarted = mesh.tool_server("knowledge", run=2)
        await anyio.to_thread.run_sync(restarted.wait_ready)
        back = await eventually(names, lambda n: n >= KNOWLEDGE, within=10)
        assert back >= CALC
        await eventually(heard, lambda n: n > seen, within=5)
        assert {t.name for t in (await session.list_tools()).tools} >= KNOWLEDGE
        found = await session.call_tool("knowledge__search", {"query": "with statement"})
        assert not found.is_error
    print(f"killed tool server's tools left tools/list after {left_after:.3f} s")
