"""``summarizer``: extractive summaries (sentence scoring, no network)."""

from agents.summarizer.agent import agent
from agents.summarizer.extractive import Summary, split_sentences, strip_instruction, summarize

__all__ = ["Summary", "agent", "split_sentences", "strip_instruction", "summarize"]
