"""The knowledge tool server over MCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mcp_servers.hosting import HostingConfig
from mcp_servers.knowledge import create_server
from mcp_servers.knowledge.index import TopicIndex
from mcp_servers.runtime import build_tool_server_app
from tests.mcp_servers.support import call, in_process, modern

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = build_tool_server_app(create_server(), HostingConfig(service="knowledge"))
    async with in_process(app) as client:
        yield client


async def test_search_ranks_the_with_topic_first(client: httpx.AsyncClient) -> None:
    result = await call(client, "search", query="with statement", k=3)
    assert result["isError"] is False
    hits = result["structuredContent"]["results"]
    assert len(hits) == 3
    assert hits[0]["topic"] == "with"
    assert hits[0]["heading"] == 'The "with" statement'
    assert hits[0]["score"] > 0
    assert hits[0]["snippet"]
    assert result["structuredContent"]["query"] == "with statement"


async def test_get_topic_returns_the_text(client: httpx.AsyncClient) -> None:
    result = await call(client, "get_topic", name="with")
    topic = result["structuredContent"]
    assert topic["name"] == "with"
    assert "context manager" in topic["text"]


async def test_an_unknown_topic_is_an_error_result_with_suggestions(
    client: httpx.AsyncClient,
) -> None:
    result = await call(client, "get_topic", name="wiht")
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert "unknown topic 'wiht'" in text
    assert "did you mean: with" in text
    assert "structuredContent" not in result
    nothing = await call(client, "get_topic", name="qqqqqqqqqqq")
    assert "search finds topics" in nothing["content"][0]["text"]


async def test_out_of_range_arguments_are_error_results(client: httpx.AsyncClient) -> None:
    result = await call(client, "search", query="with", k=500)
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Invalid arguments for tool 'search': k: must be <= 20"
    empty = await call(client, "search", query="")
    assert empty["isError"] is True


async def test_tools_are_read_only_with_output_schemas(client: httpx.AsyncClient) -> None:
    tools = (await modern(client, "tools/list")).json()["result"]["tools"]
    for tool in tools:
        assert tool["annotations"]["readOnlyHint"] is True
        assert tool["annotations"]["openWorldHint"] is False
        assert tool["outputSchema"]["type"] == "object"


async def test_a_question_finds_the_topic_it_names(client: httpx.AsyncClient) -> None:
    result = await call(client, "search", query="What does the with statement do?", k=3)
    structured = result["structuredContent"]
    assert structured["query"] == "What does the with statement do?"  # as asked
    assert [h["topic"] for h in structured["results"]][:1] == ["with"]
    named = await call(client, "search", query="for statement", k=3)
    assert named["structuredContent"]["results"][0]["topic"] == "for"
    nothing = await call(client, "search", query="What does it do?")
    assert nothing["isError"] is False
    assert nothing["structuredContent"]["results"] == []


async def test_snippets_centre_on_the_subject_not_the_framing() -> None:
    text = "What does this do? " + "filler " * 200 + "The walrus assigns in an expression."
    server = create_server(TopicIndex({"walrus": "Walrus\n\n" + text}))
    app = build_tool_server_app(server, HostingConfig(service="knowledge"))
    async with in_process(app) as client:
        result = await call(client, "search", query="What does assigns do?", k=1)
    snippet = result["structuredContent"]["results"][0]["snippet"]
    assert snippet.startswith("…")
    assert "The walrus assigns" in snippet
