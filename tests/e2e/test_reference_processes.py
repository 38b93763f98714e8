"""The reference mesh as separate processes against ``meshgate registry``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port
from tests.support.processes import MeshProcess, processes

pytestmark = pytest.mark.e2e

TOOL_SERVERS = ("knowledge", "calc")
AGENTS = ("researcher", "summarizer", "calculator", "planner")


def test_each_component_registers_passing_and_the_planner_answers(tmp_path: Path) -> None:
    registry_port = free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    with processes() as started:
        registry = MeshProcess(
            "registry",
            [
                *("registry", "--port", str(registry_port), "--data", str(tmp_path / "r.db")),
                *("--allow-cidr", "127.0.0.0/8"),
            ],
            registry_url,
            tmp_path,
        )
        started.append(registry)
        registry.wait_ready()
        ports: dict[str, int] = {}
        for name in (*TOOL_SERVERS, *AGENTS):
            ports[name] = port = free_port()
            kind = "mcp-server" if name in TOOL_SERVERS else "agent"
            args = [kind, name, "--port", str(port), "--registry", registry_url]
            if kind == "agent":
                args += ["--data", str(tmp_path / "tasks")]
            started.append(MeshProcess(name, args, f"http://127.0.0.1:{port}", tmp_path))
        for proc in started[1:]:
            proc.wait_ready()

        deadline = time.monotonic() + 20
        while True:
            services = httpx.get(registry_url + "/v1/services").json()
            passing = {s["name"] for s in services if s["passing"] >= 1}
            if passing == {*TOOL_SERVERS, *AGENTS} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert passing == {*TOOL_SERVERS, *AGENTS}

        question = "What does the with statement do, and what is 17*23?"
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": str(uuid.uuid4()),
                    "role": "ROLE_USER",
                    "parts": [{"text": question}],
                }
            },
        }
        answer = httpx.post(
            f"http://127.0.0.1:{ports['planner']}/",
            json=body,
            headers={"A2A-Version": "1.0"},
            timeout=30,
        ).json()
        task = answer["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        text = " ".join(p.get("text", "") for a in task["artifacts"] for p in a["parts"])
        assert "391" in text
        assert "with" in text.lower()

        # A graceful stop deregisters every component and exits 0.
        for proc in started[1:]:
            proc.terminate()
        for proc in started[1:]:
            assert proc.stop() == 0, proc.log.read_text()[-2000:]
        assert httpx.get(registry_url + "/v1/services").json() == []
