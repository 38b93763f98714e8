"""The summarizer agent: extractive summaries, computed locally (no tools, no network)."""

from __future__ import annotations

from typing import Any

from agents.sdk import Agent, IncomingMessage, Reply, SkillContext, SkillError
from agents.summarizer.extractive import strip_instruction, summarize

__all__ = ["MAX_SENTENCES", "agent"]

#: The most sentences a caller may ask for (metadata or data ``sentences``).
MAX_SENTENCES = 20

agent = Agent(
    "summarizer",
    "Extractive summaries of text: the sentences that carry its main words.",
    tags=["text"],
)


@agent.skill(
    "summarize",
    tags=["text", "summary"],
    examples=["Summarize: <a few paragraphs>"],
)
async def summarize_text(message: IncomingMessage, ctx: SkillContext) -> Reply:
    """Summarise the text (or a data part's ``text``) in its own most telling sentences."""
    text = _given_text(message)
    if not text:
        raise SkillError("there is no text to summarise")
    summary = summarize(text, _requested_length(message))
    return Reply(
        text=summary.text,
        data={
            "sentences": len(summary.sentences),
            "of": summary.total,
            "kept": list(summary.indices),
        },
    )


def _given_text(message: IncomingMessage) -> str:
    for part in message.data:
        if isinstance(part.get("text"), str) and part["text"].strip():
            return str(part["text"]).strip()
    return strip_instruction(message.text)


def _requested_length(message: IncomingMessage) -> int | None:
    sources: list[Any] = [message.metadata, *message.data]
    for source in sources:
        value = source.get("sentences")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
            return min(int(value), MAX_SENTENCES)
    return None
