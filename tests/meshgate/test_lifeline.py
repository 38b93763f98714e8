"""A process started for a launcher that is already gone does not start.

(The launcher SIGKILLed while its children run: tests/meshgate/launcher/test_up.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys

from meshgate.lifeline import PARENT_ENV


def _meshgate(parent: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, PARENT_ENV: str(parent)}
    return subprocess.run(
        [sys.executable, "-m", "meshgate", "init", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_child_whose_launcher_is_gone_exits_at_once() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    result = _meshgate(gone.pid)
    assert result.returncode == 1
    assert f"the launcher (pid {gone.pid}) is gone" in result.stderr


def test_a_child_of_a_live_launcher_runs() -> None:
    result = _meshgate(os.getpid())  # this test is the launcher
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
