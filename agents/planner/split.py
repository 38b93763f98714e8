"""Planning: a question cut into parts, each with the skill that answers it.

* A text that asks for a summary ("Summarize: ...") or is long prose (several
  sentences, hundreds of characters, no question mark) is one ``summarize`` part.
* Otherwise the text is cut at "?", ";" and line ends, then at "and" where what
  follows starts a new question ("..., and what is 17*23?"): "lists and
  tuples" stays whole.
* A part holding arithmetic (an operator or a function call) goes to
  ``calculate``; every other part to ``research``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.calculator import has_arithmetic
from agents.summarizer import split_sentences, strip_instruction

__all__ = ["LONG_TEXT_CHARS", "Step", "is_long_text", "plan", "skill_for"]

#: Prose at least this long (and of several sentences, with no "?") is summarised.
LONG_TEXT_CHARS = 400
# Words that open a new question. Not "is", "do" or "list": "between is and is not",
# "lists and list comprehensions" are one question each.
_LEADS = (
    r"what|how|why|when|where|which|who|whose|can|could|should|would|explain|describe"
    r"|define|tell|calculate|compute|evaluate|work\s+out|summari[sz]e"
)
_AND_NEXT = re.compile(rf",?\s+(?:and|also|then)\s+(?=(?:{_LEADS})\b)", re.IGNORECASE)
_SEPARATORS = re.compile(r"(?<=\?)|;|\n+")


@dataclass(frozen=True)
class Step:
    """One part of the question and the skill that answers it."""

    text: str
    skill: str


def is_long_text(text: str) -> bool:
    """Whether ``text`` is prose to summarise rather than a question to answer."""
    if strip_instruction(text) != text.strip():
        return True  # "Summarize: ..." asks for it, whatever the length
    return len(text) >= LONG_TEXT_CHARS and "?" not in text and len(split_sentences(text)) >= 3


def skill_for(part: str) -> str:
    """The skill that answers one part: ``calculate`` for arithmetic, else ``research``."""
    return "calculate" if has_arithmetic(part) else "research"


def _parts(text: str) -> list[str]:
    parts: list[str] = []
    for chunk in _SEPARATORS.split(text):
        for part in _AND_NEXT.split(chunk):
            part = " ".join(part.split()).strip(" ,.")
            if len(part) > 1 and part.lower() not in (p.lower() for p in parts):
                parts.append(part)
    return parts


def plan(text: str) -> list[Step]:
    """The steps that answer ``text``, in the order it asks them (empty for no text)."""
    if not text.strip():
        return []
    if is_long_text(text):
        return [Step(text.strip(), "summarize")]
    return [Step(part, skill_for(part)) for part in _parts(text)]
