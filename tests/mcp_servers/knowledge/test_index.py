"""The BM25 index over Python's help topics."""

from __future__ import annotations

import time

from mcp_servers.knowledge.index import Passage, TopicIndex, default_index, snippet, tokenize


def test_tokenize_keeps_python_keywords_and_drops_english_stopwords() -> None:
    assert tokenize("The WITH statement, for a loop") == ["with", "statement", "for", "loop"]


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
