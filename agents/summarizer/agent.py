"""The summarizer agent: extractive summaries, computed locally (no tools, no network).

With a language model configured (``ctx.llm``) the summary is the model's own
words (:mod:`agents.summarizer.abstractive`); when it cannot be reached or its
answer is unusable, the skill says so in a progress report and keeps the
text's own sentences. Then, and only then, the reply's data say which was
used: ``method`` is ``"llm"`` or ``"extractive"`` (with ``fallback``, the
reason, when the model was asked and failed). Without a model the summary is
extractive, as ever.

Its ``/mcp`` has ``summarize_text``: extractive summaries as a tool (no model).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from agents.sdk import (
    READ_ONLY,
    Agent,
    IncomingMessage,
    Reply,
    SkillContext,
    SkillError,
    language_model,
)
from agents.summarizer.abstractive import UnusableSummary, summarize_with_llm
from agents.summarizer.extractive import (
    default_length,
    split_sentences,
    strip_instruction,
    summarize,
)

__all__ = ["MAX_SENTENCES", "MAX_TEXT_CHARS", "TextSummary", "agent"]

#: The most sentences a caller may ask for (metadata or data ``sentences``).
MAX_SENTENCES = 20
#: The longest text the ``summarize_text`` tool takes.
MAX_TEXT_CHARS = 200_000

logger = logging.getLogger("meshgate.agent.summarizer")


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
async def summarize_message(message: IncomingMessage, ctx: SkillContext) -> Reply:
    """Summarise the text (or a data part's ``text``) in its own most telling sentences."""
    text = _given_text(message)
    if not text:
        raise SkillError("there is no text to summarise")
    length = _requested_length(message)
    llm = language_model(ctx)
    if llm is None:
        return _extractive(text, length)
    total = len(split_sentences(text))
    await ctx.progress("asking the LLM for a summary")
    try:
        abstract = await summarize_with_llm(llm, text, length or default_length(total))
    except (UnusableSummary, SkillError) as exc:  # agents.errors.LlmUnavailable included
        reason = str(exc)
    except Exception as exc:  # a LanguageModel outside the contract: its text may say anything
        logger.warning("the language model failed", exc_info=True)
        reason = f"the LLM failed ({type(exc).__name__})"
    else:
        sentences = len(split_sentences(abstract))
        return Reply(abstract, data={"method": "llm", "sentences": sentences, "of": total})
    logger.info("task %s: %s; summarising extractively", ctx.task_id, reason)
    await ctx.progress(f"{reason}; keeping the text's own sentences instead")
    return _extractive(text, length, method="extractive", fallback=reason)


def _extractive(text: str, length: int | None, **said: str) -> Reply:
    """The extractive summary; ``said`` (how it came to be) goes into its data first."""
    summary = summarize(text, length)
    return Reply(
        text=summary.text,
        data={
            **said,
            "sentences": len(summary.sentences),
            "of": summary.total,
            "kept": list(summary.indices),
        },
    )


class TextSummary(BaseModel):
    summary: str = Field(description="The kept sentences joined by spaces.")
    sentences: list[str] = Field(description="The kept sentences, in the text's order.")
    kept: list[int] = Field(description="Their positions among the text's sentences (from 0).")
    of: int = Field(description="How many sentences the text has.")


@agent.tool(title="Summarize a text", annotations=READ_ONLY)
def summarize_text(
    text: Annotated[
        str,
        Field(min_length=1, max_length=MAX_TEXT_CHARS, description="The text to summarise."),
    ],
    sentences: Annotated[
        int, Field(ge=1, le=MAX_SENTENCES, description="The most sentences to keep.")
    ] = 3,
) -> TextSummary:
    """The text's most telling sentences, in its own order (extractive: no words are changed)."""
    if not text.strip():
        raise ToolError("there is no text to summarise")
    summary = summarize(text, sentences)
    return TextSummary(
        summary=summary.text,
        sentences=list(summary.sentences),
        kept=list(summary.indices),
        of=summary.total,
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
