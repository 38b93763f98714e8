"""Meshgate processes stop cleanly however often they are asked to, and keep no garbage."""

from __future__ import annotations

import gc
import signal
import time
import weakref
from pathlib import Path

import anyio
import pytest

from meshgate.serving import YoungSweep
from tests.support.live import free_port
from tests.support.processes import MeshProcess


@pytest.mark.e2e
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


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


@pytest.mark.anyio
async def test_the_young_sweep_frees_cyclic_garbage_the_threshold_would_keep() -> None:
    # A gateway collects its young generation only every 50,000 net new
    # objects; a control plane's cycles (httpx responses and their bodies)
    # would pile up for hours without the sweep.
    gc.collect()
    gc.disable()
    sweep = YoungSweep(0.01)
    try:
        a, b = _Node(), _Node()
        a.peer, b.peer = b, a
        freed = anyio.Event()
        weakref.finalize(a, freed.set)
        del a, b
        assert not freed.is_set()  # reference counting alone cannot free a cycle
        with anyio.fail_after(5):
            await freed.wait()
    finally:
        sweep.stop()
        gc.enable()
