"""``summarizer``: extractive summaries (sentence scoring, no network), or an LLM's when set."""

from agents.summarizer.abstractive import UnusableSummary, summarize_with_llm
from agents.summarizer.agent import agent
from agents.summarizer.extractive import (
    Summary,
    default_length,
    split_sentences,
    strip_instruction,
    summarize,
)

__all__ = [
    "Summary",
    "UnusableSummary",
    "agent",
    "default_length",
    "split_sentences",
    "strip_instruction",
    "summarize",
    "summarize_with_llm",
]
