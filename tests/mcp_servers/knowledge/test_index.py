"""The BM25 index over Python's help topics."""

from __future__ import annotations

import time

import pytest

from mcp_servers.knowledge.index import (
    Passage,
    TopicIndex,
    default_index,
    query_terms,
    snippet,
    tokenize,
)


def test_tokenize_keeps_python_keywords_and_drops_english_stopwords() -> None:
    assert tokenize("The WITH statement, for a loop") == ["with", "statement", "for", "loop"]


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("What does the with statement do?", ["with", "statement"]),
        ("How do I write a for loop in Python?", ["write", "for", "loop"]),
        ("What's a lambda?", ["lambda"]),
        ("Can you explain the try statement, please", ["try", "statement"]),
        ("Tell me about generators", ["generators"]),
        ("What is the with statement used for?", ["with", "statement"]),
        ("What is the for statement for?", ["for", "statement"]),
        # Keywords stay, but for the "is" of "what is" itself.
        ("What is the difference between is and ==", ["difference", "between", "is", "and"]),
        ("is not", ["is", "not"]),
        ("what is for?", ["for"]),
        ("if x in y or not z", ["if", "x", "in", "y", "or", "not", "z"]),
        ("What?", []),
    ],
)
def test_query_terms_drop_the_questions_framing(query: str, terms: list[str]) -> None:
    assert query_terms(query) == terms


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("What does the with statement do", "with"),
        ("with", "with"),
        ("with statement", "with"),
        ("for statement", "for"),
        ("the for statement", "for"),
        ("Explain the for loop", "for"),
        ("How do I write a for loop in Python?", "for"),
        ("while loop", "while"),
        ("How does a while loop work?", "while"),
        ("try statement", "try"),
        ("What is the try statement for?", "try"),
        ("import", "import"),
        ("How does import work", "import"),
        ("import statement", "import"),
        ("What is a lambda?", "lambda"),
        ("lambda expressions", "lambda"),
        ("lambdas", "lambda"),
        ("dicts", "dict"),
        ("exception", "exceptions"),
        ("What's the yield statement?", "yield"),
        ("if statement", "if"),
        ("what does the in operator do", "in"),
        ("Tell me about the raise statement please", "raise"),
        ("explain the del statement", "del"),
        ("What does the pass statement do", "pass"),
        ("await expression", "await"),
        ("how do I define a class", "class"),
        ("What are exceptions?", "exceptions"),
        ("string methods", "string-methods"),
        ("context managers", "context-managers"),
        ("dict", "dict"),
        ("global nonlocal scope", "nonlocal"),
        ("truth value testing", "truth"),
    ],
)
def test_queries_and_questions_find_their_topic_first(query: str, topic: str) -> None:
    hits = default_index().search(query, 5)
    assert [h.passage.topic for h in hits][:1] == [topic]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("for statement", {"for"}),
        ("while loop", {"while"}),
        ("with", {"with"}),
        ("break and continue", {"break", "continue"}),
        ("string methods", {"string-methods"}),  # not "strings" too: the longest name counts
        ("exception", {"exceptions"}),
        ("for loop with else clause", {"for", "with", "else"}),
        # A topic's name among other words, named by nothing: BM25 alone decides.
        ("how to open a file with an encoding", set()),
        ("exception try except finally", set()),
        ("", set()),
    ],
)
def test_named_topics(query: str, named: set[str]) -> None:
    assert default_index().named_topics(query_terms(query)) == named


def test_a_name_bm25_barely_matches_is_not_put_first() -> None:
    # "for loop with else clause" names "with" too, but that "with" is a preposition.
    topics = [h.passage.topic for h in default_index().search("for loop with else clause", 5)]
    assert topics[:2] == ["for", "else"]
    assert "with" not in topics


def test_named_topics_come_first_with_their_own_scores() -> None:
    hits = default_index().search("for statement", 3)
    assert hits[0].passage.topic == "for"
    # The score stays BM25's: "for" is on most pages, "statement" on many.
    assert 0 < hits[0].score < hits[1].score


def test_the_with_statement_is_found_first() -> None:
    hits = default_index().search("with statement", 5)
    assert hits[0].passage.topic == "with"
    assert len({h.passage.topic for h in hits}) == len(hits) == 5  # one passage per topic
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_other_questions_find_their_topics() -> None:
    index = default_index()
    assert index.search("lambda expressions", 3)[0].passage.topic == "lambda"
    assert index.search("global nonlocal scope", 3)[0].passage.topic == "nonlocal"
    assert "try" in {h.passage.topic for h in index.search("exception try except finally", 3)}


def test_nothing_to_search_for_finds_nothing() -> None:
    index = default_index()
    assert index.search("", 5) == []
    assert index.search("the a of", 5) == []  # stopwords only
    assert index.search("What does it do?", 5) == []  # a question's framing only
    assert index.search("zzqxv", 5) == []
    assert index.search("with", 0) == []


def test_the_index_builds_fast_and_once() -> None:
    from pydoc_data.topics import topics

    started = time.perf_counter()
    TopicIndex(topics)
    assert time.perf_counter() - started < 1.0
    assert default_index() is default_index()


def test_close_matches_suggest_topic_names() -> None:
    index = default_index()
    assert index.close_matches("wiht")[0] == "with"
    assert "string-methods" in index.close_matches("string")
    assert index.close_matches("qqqqqqqq") == []


def test_snippet_centres_on_a_query_term() -> None:
    text = "alpha " * 100 + "needle here " + "omega " * 100
    passage = Passage("topic", "Heading", text)
    cut = snippet(passage, {"needle"}, width=80)
    assert "needle" in cut
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert snippet(Passage("t", "h", "short text"), {"zzz"}) == "short text"


def test_a_small_custom_corpus() -> None:
    index = TopicIndex({"apples": "Apples are red fruit.", "pears": "Pears are green fruit."})
    assert [h.passage.topic for h in index.search("green", 5)] == ["pears"]
