"""The supervisor against small real processes: crash loops, stuck starts, stubborn stops."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from typing import Any

import anyio
import pytest

from meshgate.launcher import Output, ProcessSpec, Supervisor, SupervisorPolicy
from meshgate.launcher.ports import PortAllocator

pytestmark = pytest.mark.anyio

#: ``once``: answers /readyz, then exits 3; ``stay``: keeps serving; ``stubborn``: ignores SIGTERM.
SERVER = """
import http.server, os, signal, sys
port, mode = int(sys.argv[1]), sys.argv[2]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        print("answered", self.path, flush=True)
        if mode == "once":
            os._exit(3)
    def log_message(self, *args):
        pass
print("listening on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

FAST = SupervisorPolicy(backoff_initial=0.01, backoff_max=0.05, max_restarts=2, poll_interval=0.02)


def process(mode: str, kind: str = "mcp-server", ready_timeout: float = 10.0) -> ProcessSpec:
    port = PortAllocator().allocate()
    argv = (sys.executable, "-c", SERVER, str(port), mode)
    return ProcessSpec("probe", "probe", kind, port, argv, ready_timeout=ready_timeout)


def events(out: io.StringIO, kind: str | None = None) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    return [e for e in entries if e["component"] == "meshgate" and kind in (None, e["event"])]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_for_event(out: io.StringIO, kind: str, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while not (found := events(out, kind)):
        assert time.monotonic() < deadline, out.getvalue()[-2000:]
        await anyio.sleep(0.02)
    return found[0]


async def test_a_crash_loop_is_given_up_on_with_a_clear_message() -> None:
    out = io.StringIO()
    supervisor = Supervisor([process("once")], Output(out, json_lines=True, colour=False), FAST)
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            assert await supervisor.run(lambda seconds: None) == 0

        tg.start_soon(run)
        gave_up = await wait_for_event(out, "gave_up", within=20)
        supervisor.request_stop()
    assert gave_up["reason"] == "exited with status 3"
    assert "it crashed 3 times in a row, so it stays down" in gave_up["msg"]
    assert "answered /readyz" in gave_up["msg"]  # its last log lines
    assert [e["delay"] for e in events(out, "restarting")] == [0.01, 0.02]
    assert [e["restarts"] for e in events(out, "ready")] == [0, 1, 2]
    assert supervisor.children[0].given_up
    probe_lines = [
        e["msg"] for e in map(json.loads, out.getvalue().splitlines()) if e["component"] == "probe"
    ]
    assert probe_lines.count(f"listening on {supervisor.children[0].spec.port}") == 3


async def test_a_process_that_never_gets_ready_fails_the_start_and_is_killed() -> None:
    out = io.StringIO()
    port = PortAllocator().allocate()
    argv = (sys.executable, "-c", "import time; print('thinking', flush=True); time.sleep(60)")
    stuck = ProcessSpec("stuck", "stuck", "agent", port, argv, ready_timeout=0.3)
    supervisor = Supervisor([stuck], Output(out, json_lines=True, colour=False), FAST)
    assert await supervisor.run(lambda seconds: None) == 1
    failed = events(out, "failed")[0]
    assert failed["reason"] == f"was not ready within 0.3 s (http://127.0.0.1:{port}/readyz)"
    assert failed["tail"] == ["thinking"]
    assert not alive(events(out, "started")[0]["pid"])


async def test_a_process_that_ignores_sigterm_is_killed_after_its_grace() -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        [process("stubborn", kind="gateway")], Output(out, json_lines=True, colour=False), FAST
    )
    began = 0.0

    def ready(seconds: float) -> None:
        nonlocal began
        began = time.monotonic()
        supervisor.request_stop()

    assert await supervisor.run(ready) == 0
    assert 1.4 < time.monotonic() - began < 5
    assert events(out, "killed")[0]["msg"] == "probe did not stop within 1.5 s: SIGKILL"
    assert events(out, "stopped")[0]["status"] == -9
    assert not alive(events(out, "started")[0]["pid"])


async def test_a_second_stop_request_kills_at_once() -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        [process("stubborn", kind="gateway")], Output(out, json_lines=True, colour=False), FAST
    )
    began = 0.0

    def ready(seconds: float) -> None:
        nonlocal began
        began = time.monotonic()
        supervisor.request_stop()
        supervisor.request_stop()

    assert await supervisor.run(ready) == 0
    assert time.monotonic() - began < 1.4
    assert events(out, "killing")[0]["msg"] == "asked again: killing every process now"
    assert events(out, "stopped")[0]["msg"] == "probe stopped (was killed by SIGKILL)"


async def test_a_stop_during_the_start_stops_what_started() -> None:
    out = io.StringIO()
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    slow = ProcessSpec("slow", "slow", "agent", PortAllocator().allocate(), argv)
    supervisor = Supervisor([slow], Output(out, json_lines=True, colour=False), FAST)
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            assert await supervisor.run(lambda seconds: pytest.fail("it was never ready")) == 0

        tg.start_soon(run)
        await wait_for_event(out, "started", within=10)
        supervisor.request_stop()
    assert events(out, "interrupted")[0]["msg"] == "stopped before the mesh was up"
    assert events(out, "stopped")[0]["name"] == "slow"
    assert not alive(events(out, "started")[0]["pid"])


async def test_a_program_that_cannot_be_run_fails_the_start() -> None:
    out = io.StringIO()
    missing = ProcessSpec("ghost", "ghost", "agent", 1, ("/nonexistent/meshgate-ghost",))
    supervisor = Supervisor([missing], Output(out, json_lines=True, colour=False), FAST)
    assert await supervisor.run(lambda seconds: pytest.fail("it was never ready")) == 1
    failed = events(out, "failed")[0]
    assert failed["name"] == "ghost"
    assert failed["reason"].startswith("could not be started: [Errno 2] No such file")
    assert events(out, "started") == []
