"""Defects the registry fuzzer found, kept as plain tests (each failed before its fix)."""

from __future__ import annotations

import pytest

from registry.server.openapi import openapi_document
from tests.registry.server.conftest import running_registry

pytestmark = pytest.mark.anyio

LIST = "/v1/instances"


@pytest.mark.parametrize(
    "query",
    [
        "index=%C2%B2",  # a superscript two is a digit to str.isdigit, not to int(): was a 500
        "index=%D9%A1",  # an Arabic-Indic one
        "wait=",  # a malformed wait without an index was ignored
        "wait=soon",
        "index=1&wait=%201s",  # blanks the document's pattern does not admit
        "index=1&wait=1%E2%82%81s",  # a non-ASCII digit
        "index=1&wait=1e3",
        "index=1&wait=1_0",
        "passing=TRUE",  # the document lists the spellings of a flag exactly
        "passing=%20yes",
        "passing=maybe",
    ],
)
async def test_malformed_query_parameters_are_422_naming_the_parameter(query: str) -> None:
    async with running_registry() as registry:
        response = await registry.get(f"{LIST}?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == query.rpartition("&")[2].partition("=")[0]


@pytest.mark.parametrize("query", ["passing", "passing=", "passing=yes", "passing=1"])
async def test_every_documented_spelling_of_a_flag_is_accepted(query: str) -> None:
    async with running_registry() as registry:
        response = await registry.get(f"{LIST}?{query}&index=1&wait=0ms")
    assert response.status_code == 200


def test_the_document_lists_the_flag_spellings_the_registry_accepts() -> None:
    document = openapi_document("test")
    [passing] = [p for p in document["paths"][LIST]["get"]["parameters"] if p["name"] == "passing"]
    assert sorted(passing["schema"]["enum"]) == sorted(["", "true", "1", "yes", "false", "0", "no"])


async def test_a_blocking_query_with_a_wait_of_ascii_units_still_blocks_and_returns() -> None:
    async with running_registry() as registry:
        first = await registry.get(LIST)
        index = first.headers["x-meshgate-index"]
        response = await registry.get(LIST, params={"index": index, "wait": "0m0.02s"})
    assert response.status_code == 200


async def test_json_nested_deeper_than_the_decoder_goes_is_a_400() -> None:
    # Found by the JSON-RPC properties on the gateway; the registry decoded the same way.
    async with running_registry() as registry:
        response = await registry.put(
            "/v1/services/web/instances/w1",
            content=b"[" * 100_000,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "body"
