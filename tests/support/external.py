"""Clients nobody here wrote, installed by ``make peers`` under ``.tools/``."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"


def a2a_handler() -> Path:
    """The ``handler`` CLI of PyPI's a2a-handler (its own venv: it pins mcp<2)."""
    path = TOOLS / "a2a-handler" / "bin" / "handler"
    if not path.exists():
        pytest.skip("a2a-handler is not installed: run `make peers` (make test does)")
    return path


def mcp_inspector_cli() -> list[str]:
    """The MCP Inspector's CLI mode: append ``URL --method tools/list`` and so on."""
    node = shutil.which("node")
    cli = TOOLS / "node" / "node_modules" / "@modelcontextprotocol" / "inspector" / "cli"
    script = cli / "build" / "cli.js"
    if node is None or not script.exists():
        pytest.skip("node or the MCP Inspector is missing: run `make peers` (needs npm)")
    return [node, str(script), "--cli"]


async def inspect_mcp(url: str, *args: str) -> Any:
    """Run the Inspector CLI against ``url`` with ``args``; its JSON answer.

    A subprocess of the running event loop, so a server in the same loop keeps
    serving while it runs.
    """
    process = await asyncio.create_subprocess_exec(
        *mcp_inspector_cli(),
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        with anyio.fail_after(60):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    return json.loads(out)
