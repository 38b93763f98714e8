"""The ``knowledge`` tool server: search and read Python's own help topics."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_servers.knowledge.index import TopicIndex, default_index, query_terms, snippet
from mcp_servers.quiet import quiet_server

__all__ = ["SearchHit", "SearchResults", "Topic", "create_server"]

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


class SearchHit(BaseModel):
    topic: str = Field(description="Topic name; pass it to get_topic for the full text.")
    heading: str = Field(description="The topic's heading.")
    score: float = Field(
        description="BM25 score of the passage (higher is better); topics the query names "
        '("for statement") come first whatever their score.'
    )
    snippet: str = Field(description="The matching part of the passage.")


class SearchResults(BaseModel):
    query: str
    results: list[SearchHit] = Field(description="Best first, at most one passage per topic.")


class Topic(BaseModel):
    name: str
    heading: str
    text: str


def create_server(index: TopicIndex | None = None) -> MCPServer:
    """The knowledge server over ``index`` (default: this interpreter's help topics)."""
    topics = index or default_index()  # built here, once: queries never wait for it
    server = quiet_server(
        "knowledge",
        instructions="Search Python's language reference help topics (offline BM25).",
    )

    @server.tool(title="Search Python help topics", annotations=_READ_ONLY)
    async def search(
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=500,
                description='Words to look for, or a question ("What does with do?").',
            ),
        ],
        k: Annotated[int, Field(ge=1, le=20, description="How many topics to return.")] = 5,
    ) -> SearchResults:
        """Rank Python's help topics (statements, operators, types...) by BM25 relevance.

        A question's framing words are ignored; a topic the query names comes first.
        """
        terms = set(query_terms(query))
        hits = [
            SearchHit(
                topic=hit.passage.topic,
                heading=hit.passage.heading,
                score=round(hit.score, 4),
                snippet=snippet(hit.passage, terms),
            )
            for hit in topics.search(query, k)
        ]
        return SearchResults(query=query, results=hits)

    @server.tool(title="Read a Python help topic", annotations=_READ_ONLY)
    async def get_topic(
        name: Annotated[str, Field(min_length=1, max_length=100, description="A topic name.")],
    ) -> Topic:
        """The full text of one help topic, by the name that search returns."""
        text = topics.topics.get(name.strip())
        if text is None:
            close = topics.close_matches(name)
            hint = f"; did you mean: {', '.join(close)}?" if close else "; search finds topics"
            raise ToolError(f"unknown topic {name[:100]!r}{hint}")
        heading = text.lstrip().split("\n", 1)[0].strip()
        return Topic(name=name.strip(), heading=heading, text=text)

    @server.resource(
        "knowledge://topics",
        name="topics",
        title="Python help topic names",
        description="Every topic name, one per line; read knowledge://topics/{name} for one.",
        mime_type="text/plain",
    )
    def topic_names() -> str:
        return "\n".join(sorted(topics.topics))

    @server.resource(
        "knowledge://topics/{name}",
        name="topic",
        title="A Python help topic",
        description="The full text of one help topic.",
        mime_type="text/plain",
    )
    def topic_text(name: str) -> str:
        text = topics.topics.get(name)
        if text is None:
            raise MCPError(INVALID_PARAMS, f"unknown topic {name[:100]!r}")
        return text

    @server.prompt(title="Explain a Python help topic")
    def explain_topic(
        name: Annotated[str, Field(description="A topic name, as search returns it.")],
    ) -> str:
        """Ask for a plain-language explanation of one help topic, with its text attached."""
        text = topics.topics.get(name.strip())
        if text is None:
            raise MCPError(INVALID_PARAMS, f"unknown topic {name[:100]!r}")
        return (
            f"Explain the Python help topic {name.strip()!r} in plain words, with a short "
            f"example.\n\n{text}"
        )

    return server
