"""``meshgate demo`` as a user runs it: the whole reference mesh, the scenario, a clean stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_meshgate_demo_passes_every_step_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshgate", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "6/6 steps passed" in output
    assert "answer has 391 and" in output
    assert "exit 0 in" in output
    # It ran in a scratch directory: nothing is left where it was started.
    assert list(tmp_path.iterdir()) == []
