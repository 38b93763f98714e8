"""Real ``meshgate`` processes for end-to-end tests, stopped by the PID they got."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


class MeshProcess:
    """One ``python -m meshgate ...`` child with its output in a log file."""

    def __init__(self, name: str, args: list[str], url: str, logs: Path) -> None:
        self.name = name
        self.url = url
        self.terminated = False
        self.log = logs / f"{name}.log"
        command = [sys.executable, "-m", "meshgate", "--log-json", *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, within: float = 20.0) -> None:
        """Poll ``/readyz`` until it answers 200; fail if the process dies first."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-2000:]
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} was not ready within {within}s")

    def terminate(self) -> None:
        """Ask the process to stop (once: a second SIGTERM is not a stronger request)."""
        if not self.terminated and self.proc.poll() is None:
            self.terminated = True
            self.proc.terminate()

    def stop(self, within: float = 20.0) -> int:
        """SIGTERM, then SIGKILL if it does not end; return the exit status."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=within)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


@contextlib.contextmanager
def processes() -> Iterator[list[MeshProcess]]:
    """Collects started processes and stops every one of them, in reverse order."""
    started: list[MeshProcess] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            proc.stop()
