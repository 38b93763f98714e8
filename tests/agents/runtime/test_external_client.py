"""A client nobody here wrote: a2a-handler validates the card and talks to the agent."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.agents.runtime.support import make_agent, running_agent
from tests.support.external import a2a_handler

pytestmark = pytest.mark.anyio


async def handler(home: Path, *args: str) -> str:
    """Run ``handler ARGS`` without blocking the event loop; its stdout."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env["XDG_DATA_HOME"] = str(home / ".data")
    with anyio.fail_after(60):
        done = await anyio.run_process([str(a2a_handler()), *args], env=env, check=False)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"handler {args} exited {done.returncode}: {out}\n{err}"
    return out


async def test_a2a_handler_validates_the_card_and_gets_replies(tmp_path: Path) -> None:
    async with running_agent(make_agent(), tmp_path) as (url, _):
        card = json.loads(
            await handler(tmp_path, "--output", "json", "card", "validate", "--url", url)
        )
        assert card["valid"] is True
        assert card["agent_name"] == "tester"
        assert card["protocol_version"] == "1.0"

        send = ("--output", "json", "message", "send", "--url", url, "--text", "hello")
        task: dict[str, Any] = json.loads(
            await handler(tmp_path, *send, "--data", '{"skill": "echo"}')
        )
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        parts = task["artifacts"][0]["parts"]
        assert parts[0]["text"] == "echo: hello"
        assert parts[1]["data"]["citations"] == [
            {"source": "test://echo", "title": "Echo", "agent": "tester"}
        ]

        unnamed = json.loads(await handler(tmp_path, *send))
        assert unnamed["status"]["state"] == "TASK_STATE_FAILED"
        said = unnamed["status"]["message"]["parts"][0]["text"]
        assert "(one of: echo, slow, fail, crash, ask)" in said


async def test_a2a_handler_streams(tmp_path: Path) -> None:
    async with running_agent(make_agent(), tmp_path) as (url, _):
        args = ("--output", "ndjson", "message", "send", "--url", url, "--text", "hi", "--stream")
        out = await handler(tmp_path, *args, "--data", '{"skill": "echo"}')
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["type"] for e in events] == ["task", "status", "artifact", "status"]
    assert [e["state"] for e in events] == ["submitted", "working", "working", "completed"]
    assert events[2]["text"] == "echo: hi"
