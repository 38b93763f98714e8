"""A BM25 index over Python's own help topics (``pydoc_data.topics``).

Each topic is cut into passages of a few paragraphs; every passage carries its
topic's name and heading. Scoring is `bm25s <https://github.com/xhluca/bm25s>`_
(sparse matrices: ~15 ms to index the ~450 passages here, ~0.02 ms a query).

Queries may be questions (:func:`query_terms`): their framing ("what does",
"how do I", "explain", "please", "in Python") is dropped, Python's keywords
are kept. A query that names a topic (:meth:`TopicIndex.named_topics`) puts
that topic first, whatever BM25 says: "for statement", "while loop", "lambda
expressions", "with", "string methods". Else "for", a word on every other
page, would leave the ``for`` topic behind the pages that say "statement" most.
"""

from __future__ import annotations

import difflib
import keyword
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bm25s  # type: ignore[import-untyped]
import numpy as np
from bm25s.stopwords import STOPWORDS_EN  # type: ignore[import-untyped]

__all__ = ["Hit", "Passage", "TopicIndex", "default_index", "query_terms", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9_]+")
_KEYWORDS = frozenset([*keyword.kwlist, *keyword.softkwlist])
#: English stopwords, minus Python's keywords: "with", "for", "in" are what users ask about.
_STOPWORDS = frozenset(STOPWORDS_EN) - _KEYWORDS
_FRAMING_TEXT = """what how why when where which who whom whose do does did doing done
can could would should explain describe define tell show give me i you we my your our
please about work works working mean means meaning use used using python pythons
don doesn didn isn aren won"""
#: Words that frame a question rather than say what it is about (never a Python keyword).
_FRAMING = frozenset(_FRAMING_TEXT.split()) - _KEYWORDS
_FRAMING_PHRASES = re.compile(
    r"['\u2019](?:s|re|ve|ll|d|m|t)\b"  # what's, don't: the word stays, the ending goes
    r"|^\s*(?:what|how|why|when|where|which|who)\s+is\b"  # the "is" of "what is ..."
    r"|\bused\s+for\b"
    r"|\b(?:in|with|for|using)\s+python\b",
    re.IGNORECASE,
)
#: "What is X for?": that "for" asks what X is good for.
_WHAT_FOR = re.compile(r"^\s*(?:what|why)\b.*\bfor\W*$", re.IGNORECASE | re.DOTALL)
#: Words that say which kind of thing a topic name is: "for loop", "try statement".
_KINDS = frozenset(
    f"{word}{plural}"
    for word in ("statement", "loop", "keyword", "clause", "expression", "operator", "definition")
    for plural in ("", "s")
)
#: Words a query of nothing but topic names may join them with: "break and continue".
_GLUE = _KINDS | {"and", "or", "vs", "versus"}
#: A named topic BM25 scores below this share of the best named one is a word in
#: passing ("with" in "for loop with else clause"), not put first.
_NAMED_SHARE = 1 / 3
_PASSAGE_CHARS = 1_200
_SNIPPET_CHARS = 300


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, English stopwords (not Python keywords) dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def query_terms(query: str) -> list[str]:
    """The terms searched for: :func:`tokenize` without the question's framing.

    "What does the with statement do?" searches ``with statement``; "what is
    the difference between is and ==" keeps its second "is" (a keyword).
    """
    terms = [t for t in tokenize(_FRAMING_PHRASES.sub(" ", query)) if t not in _FRAMING]
    if len(terms) > 1 and terms[-1] == "for" and _WHAT_FOR.match(query):
        terms.pop()
    return terms


def _same_word(term: str, name: str) -> bool:
    # Singular or plural: "exception" names "exceptions", "lambdas" names "lambda".
    return term == name or term == f"{name}s" or f"{term}s" == name


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
        #: Each topic's name as query terms: "string-methods" -> ("string", "methods").
        self._names = {
            name: words
            for name in self.topics
            if (words := tuple(tokenize(name.replace("-", " "))))
        }
        topic_of = np.array([p.topic for p in self.passages], dtype=object)
        self._rows = {name: np.flatnonzero(topic_of == name) for name in self.topics}

    def search(self, query: str, k: int) -> list[Hit]:
        """The best passage of each of the ``k`` best-matching topics, best first.

        Topics the query names come first (in BM25 order among themselves);
        a hit's score is its passage's BM25 score all the same.
        """
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        named = self.named_topics(terms)
        # A name given in the other number ("dicts") is searched as the topic spells it too.
        spelled = [w for name in sorted(named) for w in self._names[name] if w not in terms]
        scores: np.ndarray[Any, Any] = self._bm25.get_scores([*terms, *dict.fromkeys(spelled)])
        rank = scores.copy()
        best = {name: float(scores[self._rows[name]].max()) for name in named}
        for name, score in best.items():
            if score > 0 and score >= _NAMED_SHARE * max(best.values()):
                rows = self._rows[name]
                rank[rows[scores[rows] > 0]] += float(scores.max()) + 1.0  # above all others
        hits: list[Hit] = []
        seen: set[str] = set()
        for i in np.argsort(-rank, kind="stable"):
            score = float(scores[i])
            if score <= 0 or len(hits) == k:
                break
            passage = self.passages[int(i)]
            if passage.topic not in seen:
                seen.add(passage.topic)
                hits.append(Hit(passage, score))
        return hits

    def named_topics(self, terms: Sequence[str]) -> set[str]:
        """The topics that query ``terms`` name.

        A topic's name (singular or plural) is named when a kind word follows
        it ("try statement", "lambda expressions", "in operator") or when the
        terms are nothing but topic names and such words ("with", "string
        methods", "break and continue"). Of overlapping names the longest
        counts: "string methods" names ``string-methods``, not ``strings``.
        """
        spans: list[tuple[int, int, str]] = []
        for name, words in self._names.items():
            for start in range(len(terms) - len(words) + 1):
                if all(map(_same_word, terms[start:], words)):
                    spans.append((start, start + len(words), name))
        spans = [
            (start, end, name)
            for start, end, name in spans
            if not any(s <= start and end <= e and e - s > end - start for s, e, _ in spans)
        ]
        covered = {i for start, end, _ in spans for i in range(start, end)}
        only_names = all(i in covered or term in _GLUE for i, term in enumerate(terms))
        return {
            name
            for start, end, name in spans
            if only_names or (end < len(terms) and terms[end] in _KINDS)
        }

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
