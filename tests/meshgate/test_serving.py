"""Meshgate processes stop cleanly however often they are asked to."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.live import free_port
from tests.support.processes import MeshProcess

pytestmark = pytest.mark.e2e


def test_repeated_sigterm_still_exits_zero(tmp_path: Path) -> None:
    # Supervisors repeat themselves; a SIGTERM that lands while Python
    # finalizes used to kill the process with -15 after a clean shutdown.
    port = free_port()
    proc = MeshProcess(
        "calc", ["mcp-server", "calc", "--port", str(port)], f"http://127.0.0.1:{port}", tmp_path
    )
    proc.wait_ready()
    deadline = time.monotonic() + 20
    while proc.proc.poll() is None and time.monotonic() < deadline:
        proc.proc.send_signal(signal.SIGTERM)
        time.sleep(0.005)  # the cadence of a repeating supervisor, not synchronisation
    assert proc.stop() == 0
