"""``meshgate registry`` as a real process: durable through kill -9, clean on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port
from tests.support.peers import agent_card

pytestmark = pytest.mark.e2e


def wait_ready(url: str, proc: subprocess.Popen[bytes], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"registry exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError("registry did not become ready")


@contextlib.contextmanager
def registry_process(port: int, data: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "meshgate", "--log-json", "registry"]
    command += ["--port", str(port), "--data", str(data), "--allow-cidr", "127.0.0.0/8"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()  # by the PID we started
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_registration_survives_kill_9_and_sigterm_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "registry.db"
    agent_url = f"http://127.0.0.1:{free_port()}/"
    body = {
        "kind": "a2a-agent",
        "url": agent_url,
        "card": agent_card("researcher", agent_url, skills=["search"]),
        "check": {"interval_seconds": 0},
    }
    path = "/v1/services/researcher/instances/r-1"
    with registry_process(port, data) as proc:
        assert httpx.put(base + path, json=body).status_code == 201
        assert httpx.put(base + path + "/heartbeat").json()["health"] == "passing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    with registry_process(port, data) as proc:
        record = httpx.get(base + path)
        assert record.status_code == 200
        assert record.json()["card"] == body["card"]
        assert record.json()["health"] == "passing"  # its check state survived; the TTL runs anew
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
