"""The researcher agent: answers from Python's help topics through the ``knowledge`` server."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.researcher.query import search_query
from agents.sdk import Agent, Citation, IncomingMessage, Reply, SkillContext, SkillError

__all__ = ["RESULTS", "agent", "answer_from_hits"]

#: How many topics an answer draws on.
RESULTS = 3
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
    if not question:
        raise SkillError("ask a question about Python")
    query = search_query(question)
    await ctx.progress(f"searching Python's help topics for {query!r}")
    # Only the subject: the question's framing ("what is") would match any topic.
    return answer_from_hits(question, query, await _search(ctx, query))


def _cleaned(hit: Mapping[str, Any], heading: str) -> str:
    # A topic's text opens with its heading underlined in asterisks: said already.
    text = " ".join(_RULE.sub(" ", str(hit.get("snippet", ""))).split())
    return text.removeprefix(heading).strip() or text


async def _search(ctx: SkillContext, query: str) -> list[Mapping[str, Any]]:
    result = await ctx.tools.call("knowledge", "search", {"query": query[:500], "k": RESULTS})
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
