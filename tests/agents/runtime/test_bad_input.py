"""Bad requests get protocol errors (JSON-RPC errors, A2A REST errors, 4xx), never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agents.runtime import build_agent_app
from tests.agents.runtime.support import in_process, make_agent, make_config, rpc

pytestmark = pytest.mark.anyio


def _send(text: str = "hi", method: str = "SendMessage") -> dict[str, Any]:
    message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"jsonrpc": "2.0", "id": 9, "method": method, "params": {"message": message}}


def _clean(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = build_agent_app(make_agent(), make_config(max_body_bytes=4_096))
    async with in_process(app) as client:
        yield client


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{nope", -32700),
        (b"", -32700),
        (b"[]", -32600),
        (json.dumps([_send()]).encode(), -32600),  # batches are not supported
        (json.dumps({"id": 1, "method": "GetTask", "params": {"id": "x"}}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": {}, "method": "GetTask"}).encode(), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Frobnicate"}).encode(), -32601),
        (
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": [1]}).encode(),
            -32602,
        ),
        (
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}).encode(),
            -32602,
        ),
        (json.dumps(_send("")).replace('"parts": [{"text": ""}]', '"parts": "x"').encode(), -32602),
        (
            json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
            ).encode(),
            -32001,
        ),
    ],
    ids=[
        "not-json",
        "empty",
        "array",
        "batch",
        "no-jsonrpc",
        "bad-id",
        "unknown-method",
        "params-not-object",
        "no-message",
        "parts-not-list",
        "unknown-task",
    ],
)
async def test_malformed_json_rpc_gets_a_json_rpc_error(
    http: httpx.AsyncClient, raw: bytes, code: int
) -> None:
    response = await rpc(http, None, raw=raw)
    _clean(response)
    assert response.status_code == 200
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == code
    assert "result" not in body


@pytest.mark.parametrize("method", ["SendMessage", "SendStreamingMessage", "GetTask"])
@pytest.mark.parametrize("version", [None, "0.3", "2.0"])
async def test_a_missing_or_other_a2a_version_is_refused(
    http: httpx.AsyncClient, method: str, version: str | None
) -> None:
    body = (
        _send(method=method)
        if method != "GetTask"
        else {"jsonrpc": "2.0", "id": 9, "method": "GetTask", "params": {"id": "x"}}
    )
    response = await rpc(http, body, version=version)
    _clean(response)
    error = response.json()["error"]
    assert error["code"] == -32009  # VersionNotSupportedError
    assert "Expected version '1.0'" in error["message"]


async def test_an_oversized_body_is_refused_before_it_is_read(http: httpx.AsyncClient) -> None:
    response = await rpc(http, _send("x" * 10_000))
    assert response.status_code == 413
    rest = await http.post("/message:send", content=b"{" + b" " * 10_000 + b"}")
    assert rest.status_code == 413
    mcp = await http.post("/mcp", content=b"{" + b" " * 10_000 + b"}")
    assert mcp.status_code == 413


async def test_an_oversized_chunked_body_gets_a_json_rpc_error(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        payload = json.dumps(_send("x" * 10_000)).encode()
        for start in range(0, len(payload), 1_000):
            yield payload[start : start + 1_000]

    response = await http.post(
        "/", content=chunks(), headers={"A2A-Version": "1.0", "Content-Type": "application/json"}
    )
    _clean(response)
    assert response.json()["error"] == {
        "code": -32600,
        "message": "Payload too large",
        "data": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "INVALID_REQUEST",
                "domain": "a2a-protocol.org",
                "metadata": {},
            }
        ],
    }


async def test_the_rest_binding_answers_a2a_error_objects(http: httpx.AsyncClient) -> None:
    headers = {"A2A-Version": "1.0"}
    bad = await http.post("/message:send", content=b"{nope", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    missing = await http.get("/tasks/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["details"][0]["reason"] == "TASK_NOT_FOUND"
    empty = await http.post("/message:send", json={}, headers=headers)
    assert empty.status_code == 400
    unversioned = await http.get("/tasks/nope")
    assert unversioned.status_code == 400
    assert unversioned.json()["error"]["details"][0]["reason"] == "VERSION_NOT_SUPPORTED"


async def test_unknown_paths_and_methods_are_plain_http_errors(http: httpx.AsyncClient) -> None:
    assert (await http.get("/nowhere")).status_code == 404
    assert (await http.get("/a/b/c")).status_code == 404
    assert (await http.get("/")).status_code == 405
    assert (await http.delete("/.well-known/agent-card.json")).status_code == 405
