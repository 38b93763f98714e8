"""The REST facade (``/v1/invoke``, ``/v1/stream``) over real agents, and its refusals."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.gateway.integration.mesh import A2A, Mesh, running_mesh

pytestmark = pytest.mark.anyio

ROUTES = ("/v1/invoke/echo", "/v1/stream/echo")
TWO_MB = 2 * 1_048_576


async def test_invoke_answers_the_finished_task_as_plain_json(mesh: Mesh) -> None:
    answer = await mesh.client.post("/v1/invoke/echo", json={"text": "hi", "skill": "echo"})
    assert answer.status_code == 200
    result = answer.json()
    assert result.pop("taskId")
    assert result.pop("contextId")
    assert result["text"] in ("A: hi", "B: hi")
    assert result == {
        "agent": "echo",
        "state": "completed",
        "text": result["text"],
        "data": None,
        "citations": [],
    }


async def test_invoke_without_a_skill_reports_the_agents_refusal(mesh: Mesh) -> None:
    # The agent has two skills and the message names none: the task fails, and
    # the caller learns why (a 200: the agent answered; the task is the outcome).
    answer = await mesh.client.post("/v1/invoke/echo", json={"text": "hi"})
    assert answer.status_code == 200
    assert answer.json()["state"] == "failed"
    assert "(one of: echo, slow)" in answer.json()["error"]


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a Server-Sent Events response, as they arrive."""
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            yield name, json.loads(line[5:])


async def test_stream_sends_task_then_progress_then_the_result() -> None:
    key = f"stream-{uuid.uuid4()}"
    body = {"text": key, "skill": "slow"}
    seen: list[tuple[str, dict[str, Any]]] = []
    # On a real socket (ASGITransport buffers whole responses). The skill holds
    # until the test has *received* its progress: so progress is streamed while
    # the task runs, not buffered until it ends.
    async with (
        running_mesh(serve_gateway=True) as mesh,
        httpx.AsyncClient(base_url=str(mesh.url), timeout=10, trust_env=False) as http,
        http.stream("POST", "/v1/stream/echo", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for name, data in sse(response):
            seen.append((name, data))
            if name == "progress":
                mesh.gates.release(key)
    names = [name for name, _ in seen]
    assert names == ["task", "progress", "artifact", "result"]
    task, progress, _, result = (data for _, data in seen)
    replica = progress["text"].split(" ")[0]
    assert task["state"] == "submitted"
    assert progress == {**task, "state": "working", "text": f"{replica} is waiting"}
    assert result["state"] == "completed"
    assert result["text"] == f"{replica}: done {key}"
    assert result["taskId"] == task["taskId"]


async def made_by_stream(mesh: Mesh, text: str) -> dict[str, Any]:
    """The ``result`` event of ``/v1/stream/echo`` (read whole: ASGITransport buffers)."""
    answer = await mesh.client.post("/v1/stream/echo", json={"text": text, "skill": "echo"})
    results = [
        json.loads(block.partition("data: ")[2])
        for block in answer.text.split("\n\n")
        if block.startswith("event: result")
    ]
    assert len(results) == 1, answer.text
    result: dict[str, Any] = results[0]
    return result


async def test_tasks_made_through_the_facade_are_followed_up_at_their_owner(mesh: Mesh) -> None:
    made = [
        (await mesh.client.post("/v1/invoke/echo", json={"text": f"t{i}", "skill": "echo"})).json()
        for i in range(4)
    ] + [await made_by_stream(mesh, f"s{i}") for i in range(4)]
    assert {m["text"][0] for m in made} == {"A", "B"}
    for i, task in enumerate(made):
        rpc = {"jsonrpc": "2.0", "id": i, "method": "GetTask", "params": {"id": task["taskId"]}}
        got = (await mesh.client.post("/a2a/echo/", json=rpc, headers=A2A)).json()
        assert got["result"]["id"] == task["taskId"], got
        # A message continuing the (finished) task reaches its owner, which says
        # the task is over; any other replica would not know the task at all.
        more = {"text": "more", "skill": "echo", "taskId": task["taskId"]}
        refused = await mesh.client.post("/v1/invoke/echo", json=more)
        assert refused.status_code != 404, refused.text
        assert "terminal state" in refused.json()["detail"]


async def chunks(size: int) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked), ``size`` bytes in 64 KiB pieces."""
    for _ in range(size // 65_536):
        yield b"x" * 65_536


BAD_BODIES: dict[str, tuple[Any, int]] = {
    "not JSON": (b"{nope", 400),
    "not UTF-8": (b'{"text": "\xff\xfe"}', 400),
    "a JSON array": (b'["hi"]', 400),
    "no text": (b"{}", 400),
    "empty text": (b'{"text": ""}', 400),
    "text not a string": (b'{"text": 5}', 400),
    "empty parts": (b'{"parts": []}', 400),
    "parts not a list": (b'{"parts": "hi"}', 400),
    "parts the agent cannot read": (b'{"parts": [1], "skill": "echo"}', 400),
    "2 MB with Content-Length": (b'{"text": "' + b"x" * TWO_MB + b'"}', 413),
    "2 MB chunked": (chunks, 413),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", BAD_BODIES)
async def test_a_bad_body_is_a_problem_never_a_500(mesh: Mesh, route: str, case: str) -> None:
    body, status = BAD_BODIES[case]
    content = body(TWO_MB) if callable(body) else body
    headers = {"content-type": "application/json"}
    answer = await mesh.client.post(route, content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert problem["type"].startswith("urn:meshgate:error:")
    assert "Traceback" not in answer.text
