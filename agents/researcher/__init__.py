"""``researcher``: answers about Python from its help topics, via the ``knowledge`` server."""

from agents.researcher.agent import agent, answer_from_hits
from agents.researcher.query import search_query

__all__ = ["agent", "answer_from_hits", "search_query"]
