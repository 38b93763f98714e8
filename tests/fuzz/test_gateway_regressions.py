"""Defects the gateway fuzzer found, kept as plain tests (each failed before its fix)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.openapi import openapi_document
from tests.gateway.integration.mesh import Mesh, running_mesh

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    async with running_mesh() as mesh:
        yield mesh


#: Bodies whose fields have the wrong type: the facade used to drop such a field
#: silently and send the message without it (a contextId of [] started a new context).
WRONG_TYPES: list[dict[str, Any]] = [
    {"text": "hi", "skill": "echo", "contextId": []},
    {"text": "hi", "skill": "echo", "taskId": 7},
    {"text": "hi", "skill": ["echo"]},
    {"text": "hi", "skill": "echo", "metadata": "x"},
    {"text": "hi", "skill": "echo", "parts": None},
    {"skill": "echo", "parts": ["hi"]},
    {"text": 5, "skill": "echo", "parts": [{"text": "hi"}]},
]


@pytest.mark.parametrize("path", ["/v1/invoke/echo", "/v1/stream/echo"])
@pytest.mark.parametrize("body", WRONG_TYPES)
async def test_a_field_of_the_wrong_type_is_a_400(
    mesh: Mesh, path: str, body: dict[str, Any]
) -> None:
    response = await mesh.client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_facade_still_takes_text_or_parts(mesh: Mesh) -> None:
    for body in ({"text": "hi", "skill": "echo"}, {"parts": [{"text": "hi"}], "skill": "echo"}):
        response = await mesh.client.post("/v1/invoke/echo", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["text"].endswith(": hi")


def test_the_stream_is_documented_event_by_event() -> None:
    stream = openapi_document("test")["paths"]["/v1/stream/{agent}"]["post"]
    schema = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert schema["properties"]["event"]["enum"] == [
        "task",
        "progress",
        "artifact",
        "result",
        "error",
    ]


@pytest.mark.parametrize("path", ["/v1/invoke/echo", "/v1/stream/echo"])
async def test_json_nested_deeper_than_the_decoder_goes_is_a_400(mesh: Mesh, path: str) -> None:
    response = await mesh.client.post(
        path, content=b"[" * 100_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
