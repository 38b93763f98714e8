"""From a question to its subject: "What does the with statement do?" -> "with statement".

The subject is what the researcher searches for and what its answer names
("From Python's help topics on 'with statement'"). The ``knowledge`` server
ignores a question's framing words itself, so this is not what makes the
search work; it makes the answer say what was looked up, as the asker put it
("the difference between is and ==" keeps its words, symbols and all).
"""

from __future__ import annotations

import re

__all__ = ["search_query"]

_LEADING = re.compile(
    r"^\s*(?:"
    r"(?:what|how|why|when|where|which|who)(?:'s|\s+(?:is|are|was|were|does|do|did|can|could"
    r"|should|would|will))?"
    r"|(?:can|could)\s+you\s+(?:explain|describe|tell\s+me\s+about)"
    r"|explain|describe|tell\s+me\s+about|define"
    r")\b\s*(?:(?:the|a|an)\b\s*)?",
    re.IGNORECASE,
)
_TRAILING = re.compile(
    r"\s*\b(?:do|does|work|works|mean|means|used\s+for|for|in\s+python)\s*$", re.IGNORECASE
)


def search_query(question: str) -> str:
    """The subject of ``question`` (the whole question when nothing is left of it)."""
    text = " ".join(question.split()).strip(" ?!.")
    subject = _LEADING.sub("", text, count=1)
    while (shorter := _TRAILING.sub("", subject)) != subject:
        subject = shorter
    subject = subject.strip(" ?!.,")
    return subject or text
