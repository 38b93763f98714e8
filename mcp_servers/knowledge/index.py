"""A BM25 index over Python's own help topics (``pydoc_data.topics``).

Each topic is cut into passages of a few paragraphs; every passage carries its
topic's name and heading, so a query naming a statement finds that statement's
topic. Scoring is `bm25s <https://github.com/xhluca/bm25s>`_ (sparse matrices:
~15 ms to index the ~450 passages here, ~0.02 ms a query).
"""

from __future__ import annotations

import difflib
import keyword
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bm25s  # type: ignore[import-untyped]
import numpy as np
from bm25s.stopwords import STOPWORDS_EN  # type: ignore[import-untyped]

__all__ = ["Hit", "Passage", "TopicIndex", "default_index", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9_]+")
#: English stopwords, minus Python's keywords: "with", "for", "in" are what users ask about.
_STOPWORDS = frozenset(STOPWORDS_EN) - frozenset([*keyword.kwlist, *keyword.softkwlist])
_PASSAGE_CHARS = 1_200
_SNIPPET_CHARS = 300


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, English stopwords (not Python keywords) dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


@dataclass(frozen=True)
class Passage:
    topic: str
    heading: str
    text: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float


def _heading(text: str) -> str:
    return text.lstrip().split("\n", 1)[0].strip()


def _passages(topic: str, text: str) -> list[Passage]:
    heading = _heading(text)
    out: list[Passage] = []
    buffer = ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        if buffer and len(buffer) + len(paragraph) > _PASSAGE_CHARS:
            out.append(Passage(topic, heading, buffer))
            buffer = ""
        buffer = f"{buffer}\n\n{paragraph}" if buffer else paragraph
    if buffer:
        out.append(Passage(topic, heading, buffer))
    return out


def snippet(passage: Passage, terms: set[str], width: int = _SNIPPET_CHARS) -> str:
    """About ``width`` characters of the passage around its first query term, on one line."""
    text = " ".join(passage.text.split())
    start = 0
    for match in _TOKEN.finditer(text.lower()):
        if match.group() in terms and match.group() not in passage.topic:
            start = max(0, match.start() - width // 4)
            break
    cut = text[start : start + width]
    return ("…" if start else "") + cut + ("…" if start + width < len(text) else "")


class TopicIndex:
    """BM25 over passages of ``topics`` (name → text); thread-safe for queries."""

    def __init__(self, topics: Mapping[str, str]) -> None:
        self.topics = dict(topics)
        self.passages = [p for name, text in self.topics.items() for p in _passages(name, text)]
        corpus = [
            # The topic's name and heading count twice: they say what a passage is about.
            tokenize(f"{p.topic.replace('-', ' ')} {p.heading} " * 2 + p.text)
            for p in self.passages
        ]
        self._bm25 = bm25s.BM25()
        self._bm25.index(corpus, show_progress=False)

    def search(self, query: str, k: int) -> list[Hit]:
        """The best passage of each of the ``k`` best-matching topics, best first."""
        terms = tokenize(query)
        if not terms or k <= 0:
            return []
        scores: np.ndarray[Any, Any] = self._bm25.get_scores(terms)
        hits: list[Hit] = []
        seen: set[str] = set()
        for i in np.argsort(-scores, kind="stable"):
            score = float(scores[i])
            if score <= 0 or len(hits) == k:
                break
            passage = self.passages[int(i)]
            if passage.topic not in seen:
                seen.add(passage.topic)
                hits.append(Hit(passage, score))
        return hits

    def close_matches(self, name: str, n: int = 5) -> list[str]:
        """Topic names that look like ``name`` (for "did you mean")."""
        lowered = name.strip().lower()
        found = difflib.get_close_matches(lowered, list(self.topics), n=n, cutoff=0.5)
        prefixed = [t for t in self.topics if lowered and t.startswith(lowered) and t not in found]
        return (found + sorted(prefixed))[:n]


_default: TopicIndex | None = None
_lock = threading.Lock()


def default_index() -> TopicIndex:
    """The index over this interpreter's help topics, built once on first use."""
    global _default
    with _lock:
        if _default is None:
            from pydoc_data.topics import topics

            _default = TopicIndex(topics)
        return _default
