"""The offline validators ``make validate-deploy`` runs, as the tests call them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["REPO", "Run", "run", "tool"]

REPO = Path(__file__).resolve().parents[2]
Run = subprocess.CompletedProcess[str]


def tool(name: str) -> str:
    """A validator from the venv (the dev extra) or the PATH; the test skips without it."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (make validate-deploy installs it)")
    return found


def run(*argv: str, stdin: str | None = None, cwd: Path = REPO) -> Run:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )
