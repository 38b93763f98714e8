"""From a question to search words: "What does the with statement do?" -> "with statement".

The question's framing ("what does", "how do", "explain", a trailing "do" or
"work") says nothing about the topic, yet in a BM25 index it matches the many
passages that use those words; only the subject is searched for.
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
