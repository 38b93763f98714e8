"""The calc tool server over MCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mcp_servers.calc import create_server
from mcp_servers.hosting import HostingConfig
from mcp_servers.runtime import build_tool_server_app
from tests.mcp_servers.support import call, in_process

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = build_tool_server_app(create_server(), HostingConfig(service="calc"))
    async with in_process(app) as client:
        yield client


async def test_evaluate(client: httpx.AsyncClient) -> None:
    result = await call(client, "evaluate", expression="17*23")
    assert result["isError"] is False
    assert result["structuredContent"] == {"expression": "17*23", "value": 391, "text": "391"}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unknown function"),
        ("(1).real", "attribute access"),
        ("9**9**9", "exponent"),
    ],
)
async def test_refusals_are_error_results(
    client: httpx.AsyncClient, expression: str, message: str
) -> None:
    result = await call(client, "evaluate", expression=expression)
    assert result["isError"] is True
    assert message in result["content"][0]["text"]
    assert "Traceback" not in result["content"][0]["text"]


async def test_statistics(client: httpx.AsyncClient) -> None:
    result = await call(client, "statistics", numbers=[2, 4, 4, 4, 5, 5, 7, 9])
    stats = result["structuredContent"]
    assert stats["count"] == 8
    assert stats["mean"] == 5.0
    assert stats["median"] == 4.5
    assert stats["stdev"] == pytest.approx(2.138089935299395)
    assert (stats["min"], stats["max"]) == (2.0, 9.0)
    single = (await call(client, "statistics", numbers=[3.5]))["structuredContent"]
    assert single["stdev"] is None
    assert single["median"] == single["mean"] == 3.5


async def test_statistics_overflow_is_an_error_result(client: httpx.AsyncClient) -> None:
    result = await call(client, "statistics", numbers=[1.7e308, 1.7e308, -1.7e308])
    assert result["isError"] is True


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("evaluate", {}, "arguments: 'expression' is a required property"),
        ("evaluate", {"expression": 5}, "expression: must be of type string"),
        ("evaluate", {"expression": "1" * 5000}, "expression: must be at most 1000 characters"),
        ("statistics", {"numbers": []}, "numbers: must have at least 1 items"),
        ("statistics", {"numbers": ["a"]}, "numbers.0: must be of type number"),
        ("statistics", {"numbers": 3}, "numbers: must be of type array"),
    ],
)
async def test_bad_arguments_are_error_results_not_crashes(
    client: httpx.AsyncClient, tool: str, arguments: dict[str, object], message: str
) -> None:
    result = await call(client, tool, **arguments)
    assert result["isError"] is True
    assert result["content"] == [
        {"type": "text", "text": f"Invalid arguments for tool {tool!r}: {message}"}
    ]
