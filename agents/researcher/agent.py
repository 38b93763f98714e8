"""The researcher agent: answers from Python's help topics through the ``knowledge`` server.

Its ``/mcp`` has ``search_terms``: the query it would send to ``knowledge``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from agents.researcher.query import search_query
from agents.sdk import READ_ONLY, Agent, Citation, IncomingMessage, Reply, SkillContext, SkillError

__all__ = ["MAX_QUERY_CHARS", "RESULTS", "SearchTerms", "agent", "answer_from_hits"]

#: How many topics an answer draws on.
RESULTS = 3
#: The longest query sent to ``knowledge`` (its ``search`` takes no more).
MAX_QUERY_CHARS = 500
_RULE = re.compile(r"[*=~^-]{3,}")

agent = Agent(
    "researcher",
    "Answers questions about Python from its own help topics (BM25 search, no LLM).",
    tags=["python", "docs"],
)


@agent.skill(
    tags=["research", "python", "docs"],
    examples=["What does the with statement do?", "What is a lambda?"],
)
async def research(message: IncomingMessage, ctx: SkillContext) -> Reply:
    """Search Python's help topics and answer with the best passages, citing their topics."""
    question = message.text.strip()
    query = _query(question)
    if not query:
        raise SkillError("ask a question about Python")
    await ctx.progress(f"searching Python's help topics for {query!r}")
    return answer_from_hits(question, query, await _search(ctx, query))


class SearchTerms(BaseModel):
    query: str = Field(description="What the research skill searches the help topics for.")


@agent.tool(title="Show what a question searches for", annotations=READ_ONLY)
def search_terms(
    question: Annotated[
        str,
        Field(min_length=1, max_length=4_000, description="A question about Python."),
    ],
) -> SearchTerms:
    """The query the research skill would send to the knowledge server's search for a question."""
    query = _query(question)
    if not query:
        raise ToolError("ask a question about Python")
    return SearchTerms(query=query)


def _query(question: str) -> str:
    # The subject, which the answer names too: "with statement", not the whole question.
    return search_query(question)[:MAX_QUERY_CHARS].strip()


def _cleaned(hit: Mapping[str, Any], heading: str) -> str:
    # A topic's text opens with its heading underlined in asterisks: said already.
    text = " ".join(_RULE.sub(" ", str(hit.get("snippet", ""))).split())
    return text.removeprefix(heading).strip() or text


async def _search(ctx: SkillContext, query: str) -> list[Mapping[str, Any]]:
    result = await ctx.tools.call("knowledge", "search", {"query": query, "k": RESULTS})
    if result.is_error:
        raise SkillError(f"the knowledge search failed: {result.text[:300]}")
    found = result.structured.get("results") if isinstance(result.structured, dict) else None
    return [hit for hit in found or [] if isinstance(hit, dict) and hit.get("topic")]


def answer_from_hits(question: str, query: str, hits: Sequence[Mapping[str, Any]]) -> Reply:
    """The answer: the passages, best first, each naming its topic; the topics as citations."""
    if not hits:
        return Reply(
            text=f"Python's help topics say nothing about {query!r}.",
            data={"query": query, "results": []},
        )
    lines = [f"From Python's help topics on {query!r}:"]
    for number, hit in enumerate(hits, 1):
        heading = str(hit.get("heading") or hit["topic"])
        lines.append(f"{number}. {heading} (topic {hit['topic']!r}): {_cleaned(hit, heading)}")
    return Reply(
        text="\n".join(lines),
        data={"question": question, "query": query, "results": [dict(h) for h in hits]},
        citations=tuple(
            Citation(
                source=f"knowledge:{hit['topic']}",
                title=str(hit.get("heading") or hit["topic"]),
                agent=agent.name,
            )
            for hit in hits
        ),
    )
