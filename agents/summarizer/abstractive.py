"""Abstractive summaries from the optional LLM, checked before they are used.

The model gets the text and is told how many sentences it may write. Its answer
is used when it is non-empty prose no longer than the text itself (whitespace
collapsed); anything else is :class:`UnusableSummary`, and the summarizer
keeps the text's own sentences instead (:mod:`agents.summarizer.extractive`).
"""

from __future__ import annotations

from agents.sdk import LanguageModel

__all__ = ["MAX_LLM_TEXT_CHARS", "UnusableSummary", "summarize_with_llm", "system_prompt"]

#: A longer text is summarised extractively without asking the model.
MAX_LLM_TEXT_CHARS = 48_000


class UnusableSummary(ValueError):
    """The model's answer is not a usable summary (the message says why)."""


def system_prompt(max_sentences: int) -> str:
    """The instructions for a summary of at most ``max_sentences`` sentences."""
    length = "one sentence" if max_sentences == 1 else f"at most {max_sentences} sentences"
    return (
        "You summarise texts. Answer with the summary only: plain prose of "
        f"{length}, in the language of the text, saying nothing the text does not say. "
        "No title, no preamble, no list."
    )


async def summarize_with_llm(llm: LanguageModel, text: str, max_sentences: int) -> str:
    """The model's summary of ``text`` in at most ``max_sentences`` sentences.

    Raises :class:`UnusableSummary` for a text too long to send or an answer
    that is empty or longer than the text, and whatever ``llm`` raises (for
    :class:`~agents.llm.ChatClient`, :class:`~agents.errors.LlmUnavailable`).
    """
    if len(text) > MAX_LLM_TEXT_CHARS:
        raise UnusableSummary(
            f"the text is too long for the LLM (over {MAX_LLM_TEXT_CHARS} characters)"
        )
    summary = " ".join((await llm.complete(system_prompt(max_sentences), text)).split())
    if not summary:
        raise UnusableSummary("the LLM's summary is empty")
    if len(summary) > len(text):
        raise UnusableSummary("the LLM's summary is longer than the text")
    return summary
