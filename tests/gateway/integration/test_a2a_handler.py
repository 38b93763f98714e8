"""A client nobody here wrote (PyPI's a2a-handler) against the gateway on a real port.

Each command runs against replica A directly and against ``/a2a/echo/`` on
the gateway, and the two outputs must agree (replica name and generated ids
aside); one more sends a message that names no skill to ``/a2a/skills/echo/``.
The processes all run at once (the CLI's start-up is most of the time taken).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.gateway.integration.mesh import Mesh, running_mesh
from tests.support.external import a2a_handler

pytestmark = pytest.mark.anyio

ECHO = ("--data", '{"skill": "echo"}')


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    a2a_handler()  # skips here (not inside a task group) when the CLI is not installed
    async with running_mesh(serve_gateway=True) as mesh:
        yield mesh


async def handler(home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``handler ARGS`` without blocking the event loop; exit code, stdout, stderr."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env["XDG_DATA_HOME"] = str(home / ".data")
    with anyio.fail_after(60):
        done = await anyio.run_process([str(a2a_handler()), *args], env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def run_all(tmp_path: Path, commands: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Every ``handler ARGS`` at once (each in its own home): ``{name: parsed JSON output}``."""
    outputs: dict[str, Any] = {}

    async def one(name: str, args: tuple[str, ...]) -> None:
        home = tmp_path / name
        home.mkdir()
        code, out, err = await handler(home, *args)
        assert code == 0, f"handler {args} exited {code}: {out}\n{err}"
        if "ndjson" in args:
            outputs[name] = [json.loads(line) for line in out.splitlines() if line.strip()]
        else:
            outputs[name] = json.loads(out)

    async with anyio.create_task_group() as tg:
        for name, args in commands.items():
            tg.start_soon(one, name, args)
    return outputs


def reply(task: dict[str, Any]) -> tuple[str, str]:
    text = task["artifacts"][0]["parts"][0]["text"] if task.get("artifacts") else ""
    return task["status"]["state"], text


async def test_a2a_handler_gets_the_same_answers_through_the_gateway(
    mesh: Mesh, tmp_path: Path
) -> None:
    assert mesh.url is not None
    urls = {
        "direct": mesh.replicas["A"],
        "gateway": f"{mesh.url}/a2a/echo/",
        "skill": f"{mesh.url}/a2a/skills/echo/",
    }
    card = ("--output", "json", "card", "validate")
    send = ("--output", "json", "message", "send", "--text", "hello")
    stream = ("--output", "ndjson", "message", "send", "--text", "hi", "--stream", *ECHO)
    commands: dict[str, tuple[str, ...]] = {}
    for route in ("direct", "gateway"):
        url = ("--url", urls[route])
        commands |= {
            f"card-{route}": (*card, *url),
            f"send-{route}": (*send, *ECHO, *url),
            f"stream-{route}": (*stream, *url),
        }
    commands["unnamed-direct"] = (*send, "--url", urls["direct"])
    commands["unnamed-skill"] = (*send, "--url", urls["skill"])
    out = await run_all(tmp_path, commands)

    for route in ("direct", "gateway"):
        assert out[f"card-{route}"].pop("source") == urls[route]
    assert out["card-gateway"] == out["card-direct"]
    assert out["card-gateway"] == {"valid": True, "agent_name": "echo", "protocol_version": "1.0"}

    assert reply(out["send-direct"]) == ("TASK_STATE_COMPLETED", "A: hello")
    state, text = reply(out["send-gateway"])
    assert (state, text[1:]) == ("TASK_STATE_COMPLETED", ": hello")

    views = {
        route: [(e["type"], e["state"], e.get("text", "")[1:]) for e in out[f"stream-{route}"]]
        for route in ("direct", "gateway")
    }
    assert views["gateway"] == views["direct"]
    assert views["gateway"] == [
        ("task", "submitted", ""),
        ("status", "working", ""),
        ("status", "working", " is echoing"),  # progress, before the answer
        ("artifact", "working", ": hi"),
        ("status", "completed", ""),
    ]

    # The agent has two skills: a message that names none is refused ...
    assert out["unnamed-direct"]["status"]["state"] == "TASK_STATE_FAILED"
    # ... but not on the skill's route, which names the skill for the caller.
    state, text = reply(out["unnamed-skill"])
    assert (state, text[1:]) == ("TASK_STATE_COMPLETED", ": hello")
