"""Extractive summaries: keep the sentences that carry the text's most frequent content words.

Luhn's idea, plainly: words are counted (stopwords left out), a sentence scores
the mean weight of its content words, damped for very short sentences, the
opening sentence gets a small bonus (texts tend to say what they are about
first), and the best sentences are kept in their original order. Ties go to the
earlier sentence, so the same text always gives the same summary.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["Summary", "default_length", "split_sentences", "strip_instruction", "summarize"]

_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be because
been before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_ABBREVIATIONS = frozenset(("e.g.", "i.e.", "vs.", "mr.", "mrs.", "ms.", "dr.", "no."))
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_INSTRUCTION = re.compile(
    r"^\s*(?:please\s+)?(?:summari[sz]e|sum\s+up|tl;?dr|give\s+me\s+a\s+summary\s+of)\b"
    r"[^:\n]{0,40}[:\n]\s*",
    re.IGNORECASE,
)
_OPENING_BONUS = 1.15


@dataclass(frozen=True)
class Summary:
    """The kept sentences (in text order), their positions, and how many there were."""

    sentences: tuple[str, ...]
    indices: tuple[int, ...]
    total: int

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def strip_instruction(text: str) -> str:
    """The text to summarise without a leading "Summarize:" (or "TL;DR:", ...)."""
    return _INSTRUCTION.sub("", text, count=1).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: paragraphs first, then sentence ends (not abbreviations)."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        pieces = _BOUNDARY.split(flat)
        merged: list[str] = []
        for piece in pieces:
            last_word = merged[-1].rsplit(" ", 1)[-1].lower() if merged else ""
            if merged and last_word in _ABBREVIATIONS:
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        out.extend(merged)
    return out


def _content_words(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if w not in _STOPWORDS and len(w) > 1]


def default_length(total: int) -> int:
    """How many sentences a summary of ``total`` sentences has by default: a third, 1 to 5."""
    return min(5, max(1, round(total / 3)))


def summarize(text: str, max_sentences: int | None = None) -> Summary:
    """The best ``max_sentences`` sentences (default: :func:`default_length`)."""
    sentences = split_sentences(text)
    total = len(sentences)
    if max_sentences is None:
        max_sentences = default_length(total)
    keep = max(1, max_sentences)
    if total <= keep:
        return Summary(tuple(sentences), tuple(range(total)), total)
    words = [_content_words(s) for s in sentences]
    counts = Counter(w for ws in words for w in set(ws))  # in how many sentences a word occurs
    top = max(counts.values(), default=1)

    def score(index: int) -> float:
        ws = words[index]
        if not ws:
            return 0.0
        mean = sum(counts[w] / top for w in ws) / len(ws)
        # A two-word sentence with one frequent word is not the gist.
        value = mean * min(1.0, math.sqrt(len(ws) / 6))
        return value * (_OPENING_BONUS if index == 0 else 1.0)

    ranked = sorted(range(total), key=lambda i: (-score(i), i))
    chosen = tuple(sorted(ranked[:keep]))
    return Summary(tuple(sentences[i] for i in chosen), chosen, total)
