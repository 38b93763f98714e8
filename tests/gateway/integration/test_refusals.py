"""What the gateway answers when it cannot route: unknown and unhealthy agents,
malformed JSON-RPC, odd paths. Structured errors, on the protocol of the route.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.agents.mesh import a2a_registration, register
from tests.gateway.integration.mesh import A2A, Mesh
from tests.gateway.security.asgi import call, http_scope
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


def send_message(text: str = "hello", id: Any = "req-1") -> dict[str, Any]:
    message: dict[str, Any] = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": text}]}
    message["metadata"] = {"skill": "echo"}
    return {"jsonrpc": "2.0", "id": id, "method": "SendMessage", "params": {"message": message}}


def assert_jsonrpc_error(answer: httpx.Response, status: int, code: int, id: Any) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == id
    assert body["error"]["code"] == code
    assert "result" not in body
    return str(body["error"]["message"])


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = answer.json()
    assert problem["status"] == status
    return problem


async def test_an_unknown_agent_is_not_found_on_every_face(mesh: Mesh) -> None:
    rpc = await mesh.client.post("/a2a/nobody/", json=send_message(id=7), headers=A2A)
    assert assert_jsonrpc_error(rpc, 404, -31404, 7) == "no such agent"
    card = await mesh.client.get("/a2a/nobody/.well-known/agent-card.json")
    assert assert_problem(card, 404)["type"] == "urn:meshgate:error:not-found"
    rest = await mesh.client.post("/v1/invoke/nobody", json={"text": "hi"})
    assert_problem(rest, 404)
    listed = await mesh.client.get("/v1/agents")
    assert "nobody" not in {a["name"] for a in listed.json()}


async def test_an_agent_with_no_healthy_instance_is_503_with_retry_after(mesh: Mesh) -> None:
    # Registered, never heartbeating: critical. The gateway knows the agent
    # (not 404) but has nowhere to send the message.
    url = mesh.replicas["A"]  # never contacted: the instances are not routable
    for instance in ("d1", "d2"):
        registration = a2a_registration("down", url, ("nap",))
        await register(mesh.registry, "down", instance, registration, passing=False)
    assert {i.health.value for i in (await mesh.registry.instances("down")).value} == {"critical"}

    async def post() -> httpx.Response:
        return await mesh.client.post("/a2a/down/", json=send_message(id=3), headers=A2A)

    rpc = await eventually(post, lambda r: r.status_code != 404)  # until the table has it
    said = assert_jsonrpc_error(rpc, 503, -31503, 3)
    assert said == "no healthy instance of down"
    assert rpc.headers["retry-after"] == "1"
    assert rpc.json()["error"]["data"]["retry_after"] == 1

    rest = await mesh.client.post("/v1/invoke/down", json={"text": "hi"})
    problem = assert_problem(rest, 503)
    assert problem["type"] == "urn:meshgate:error:no-healthy-upstream"
    assert rest.headers["retry-after"] == "1"
    skill = await mesh.client.post("/a2a/skills/nap/", json=send_message(id=4), headers=A2A)
    assert_jsonrpc_error(skill, 503, -31503, 4)
    listed = await mesh.client.get("/v1/agents")
    assert "down" not in {a["name"] for a in listed.json()}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{nope", -32700),
        (b"", -32700),
        (b"\xff\xfe", -32700),
        (b"[]", -32600),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "GetTask"}]', -32600),
        (b"3", -32600),
    ],
    ids=["not JSON", "empty", "not UTF-8", "empty batch", "batch", "a number"],
)
async def test_malformed_json_rpc_gets_the_json_rpc_error_code(
    mesh: Mesh, body: bytes, code: int
) -> None:
    # JSON-RPC 2.0: -32700 when the body is not JSON, -32600 when it is not a request.
    headers = {**A2A, "content-type": "application/json"}
    answer = await mesh.client.post("/a2a/echo/", content=body, headers=headers)
    assert_jsonrpc_error(answer, 400, code, None)


async def test_a_request_without_a_method_is_refused_by_the_agent_as_invalid(mesh: Mesh) -> None:
    # Well-formed JSON, so the gateway forwards it; the agent answers (HTTP 200, as A2A does).
    answer = await mesh.client.post("/a2a/echo/", json={"jsonrpc": "2.0", "id": 9}, headers=A2A)
    assert_jsonrpc_error(answer, 200, -32600, 9)


async def raw_post(mesh: Mesh, raw_path: bytes) -> tuple[int, str, bytes]:
    """POST a SendMessage to the gateway app with this exact raw path (no client normalises it)."""
    headers = [(b"content-type", b"application/json"), (b"a2a-version", b"1.0")]
    scope = http_scope(unquote(raw_path.decode()), "POST", [*headers, (b"host", b"gateway")])
    scope["raw_path"] = raw_path
    result = await call(mesh.app, scope, [json.dumps(send_message()).encode()])
    return result.status, result.headers.get(b"content-type", b"").decode(), result.body


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/a2a/echo/../echo/",
        b"/a2a/echo/%2e%2e/echo/",
        b"/a2a/nobody/../echo/",
        b"//a2a//echo//",
        b"/a2a/./echo/",
        b"/a2a/echo",
    ],
)
async def test_a_path_variant_reaches_the_agent_on_its_canonical_path(
    mesh: Mesh, raw_path: bytes
) -> None:
    status, _, body = await raw_post(mesh, raw_path)
    assert status == 200
    task = json.loads(body)["result"]["task"]
    assert task["artifacts"][0]["parts"][0]["text"][1:] == ": hello"


@pytest.mark.parametrize(
    ("raw_path", "status"),
    [
        (b"/a2a/%2e%2e/x", 404),  # is /x: no such route
        (b"/a2a/%2e%2e/%2e%2e/x", 400),  # above the root
        (b"/a2a/echo%2F..%2Fnobody/", 400),  # an encoded slash inside a segment
        (b"/a2a/echo/..%2f..%2fnobody/", 400),
        (b"/a2a/%2565cho/", 400),  # double encoding
        (b"/A2A/echo/", 404),  # paths are case-sensitive
    ],
)
async def test_a_path_that_escapes_its_route_is_refused(
    mesh: Mesh, raw_path: bytes, status: int
) -> None:
    answered, content_type, body = await raw_post(mesh, raw_path)
    assert (answered, content_type) == (status, PROBLEM), body
    assert b"result" not in body


async def test_starlettes_own_404_and_405_are_problems_too(mesh: Mesh) -> None:
    assert assert_problem(await mesh.client.get("/no/such/route"), 404)["title"] == "Not found"
    wrong = await mesh.client.get("/v1/invoke/echo")
    assert assert_problem(wrong, 405)["type"] == "urn:meshgate:error:method-not-allowed"
    assert wrong.headers["allow"] == "POST"
