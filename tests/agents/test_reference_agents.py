"""The reference agents' own logic, and their skills run against real tool servers.

Skills get a plain :class:`~agents.sdk.SkillContext` here (the runtime's A2A
plumbing is the integration test's business); its tools are real
:class:`~agents.tools.MeshTools` calling A's real servers through a real registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from agents.calculator import agent as calculator
from agents.calculator import find_expression, has_arithmetic
from agents.delegation import PeerClient
from agents.planner import Outcome, Step, compose, is_long_text, plan
from agents.planner import agent as planner
from agents.researcher import agent as researcher
from agents.researcher import answer_from_hits, search_query
from agents.sdk import Citation, Delegator, IncomingMessage, Reply, SkillError, ToolCaller
from agents.summarizer import agent as summarizer
from agents.summarizer import split_sentences, strip_instruction, summarize
from agents.tools import MeshTools
from mcp_servers.calc import create_server as create_calc
from mcp_servers.hosting import HostingConfig
from mcp_servers.knowledge import create_server as create_knowledge
from mcp_servers.runtime import build_tool_server_app
from tests.agents.mesh import mcp_registration, register, registry_client
from tests.support.live import serve

# -- calculator: finding the arithmetic ----------------------------------------


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 17*23?", "17 * 23"),
        ("What is 17 times 23?", "17 * 23"),
        ("12 x 12", "12 * 12"),
        ("What is 2^10?", "2 ** 10"),
        ("what is 2 to the power of 8?", "2 ** 8"),
        ("what is 7 divided by 2", "7 / 2"),
        ("compute (2+3)*4, please", "(2 + 3) * 4"),
        ("In 2024, what is 3 + 4?", "3 + 4"),
        ("what is 1,000 * 3", "1000 * 3"),
        ("max(1,2,3) times 2", "max(1, 2, 3) * 2"),
        ("sqrt(16) + 2", "sqrt(16) + 2"),
        ("what is 3 * -2", "3 * -2"),
        ("what is 10% of 200", "10 / 100 * 200"),
        ("what is pi * 2", "pi * 2"),
        ("what is 5?", "5"),
        ("What does the with statement do", None),
        ("what is (1 + 2", None),
    ],
)
def test_find_expression(text: str, expression: str | None) -> None:
    assert find_expression(text) == expression


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what is 17*23?", True),
        ("what is sqrt(2)?", True),
        ("what is 5?", False),
        ("What is new in Python 3.11?", False),
        ("How do I use the with statement?", False),
    ],
)
def test_has_arithmetic(text: str, expected: bool) -> None:
    assert has_arithmetic(text) is expected


# -- researcher: the search words and the answer ---------------------------------


@pytest.mark.parametrize(
    ("question", "query"),
    [
        ("What does the with statement do?", "with statement"),
        ("How do list comprehensions work", "list comprehensions"),
        ("what is a lambda", "lambda"),
        ("What's a generator?", "generator"),
        ("what does yield mean in python", "yield"),
        ("Explain the for statement", "for statement"),
        ("the difference between is and ==", "the difference between is and =="),
        ("What is it for?", "it"),
        ("What?", "What"),
    ],
)
def test_search_query(question: str, query: str) -> None:
    assert search_query(question) == query


def test_answer_cites_each_topic_and_drops_the_heading_rule() -> None:
    hits = [
        {
            "topic": "with",
            "heading": 'The "with" statement',
            "snippet": 'The "with" statement *********** The with statement wraps a block.',
            "score": 2.0,
        },
        {"topic": "context-managers", "heading": "", "snippet": "A context manager ..."},
    ]
    reply = answer_from_hits("What does with do?", "with", hits)
    assert (
        "1. The \"with\" statement (topic 'with'): The with statement wraps a block." in reply.text
    )
    assert "2. context-managers (topic 'context-managers')" in reply.text
    assert reply.citations == (
        Citation("knowledge:with", 'The "with" statement', "researcher"),
        Citation("knowledge:context-managers", "context-managers", "researcher"),
    )
    nothing = answer_from_hits("q", "zzz", [])
    assert "say nothing about 'zzz'" in nothing.text
    assert nothing.citations == ()


# -- summarizer ------------------------------------------------------------------

PROSE = (
    "The with statement wraps a block in the methods of a context manager. "
    "A context manager sets up a runtime context and tears it down again. "
    "Files are the usual example: the file is closed when the block ends. "
    "Locks are another: the lock is released even when the block raises. "
    "The weather plays no part in any of this, though it was sunny today. "
    "Context managers make cleanup code reusable across many with statements."
)


def test_split_sentences_keeps_abbreviations_and_paragraphs() -> None:
    text = "Use a list, e.g. one of ints. Dr. Who agrees!\n\nA new paragraph\nwraps here"
    assert split_sentences(text) == [
        "Use a list, e.g. one of ints.",
        "Dr. Who agrees!",
        "A new paragraph wraps here",
    ]


def test_summary_keeps_the_gist_in_text_order() -> None:
    summary = summarize(PROSE)
    assert summary.total == 6
    assert summary.indices == (0, 1)  # about a third, in order, the opening favoured
    assert "weather" not in summary.text
    assert summarize(PROSE, 3).indices == tuple(sorted(summarize(PROSE, 3).indices))
    assert len(summarize(PROSE, 3).sentences) == 3
    assert summarize("One sentence only.").sentences == ("One sentence only.",)
    assert summarize(PROSE, 0).indices == summarize(PROSE, 1).indices  # at least one


def test_strip_instruction() -> None:
    assert strip_instruction("Summarize: the text.") == "the text."
    assert strip_instruction("please summarise this for me:\nthe text") == "the text"
    assert strip_instruction("TL;DR: x") == "x"
    assert strip_instruction("Summaries are short.") == "Summaries are short."


# -- planner: splitting and composing --------------------------------------------


@pytest.mark.parametrize(
    ("question", "steps"),
    [
        (
            "What does the with statement do, and what is 17*23?",
            [("What does the with statement do", "research"), ("what is 17*23?", "calculate")],
        ),
        (
            "What is the difference between lists and tuples?",
            [("What is the difference between lists and tuples?", "research")],
        ),
        (
            "What is a lambda? What is 2**10?",
            [("What is a lambda?", "research"), ("What is 2**10?", "calculate")],
        ),
        (
            "Explain generators; compute 3 * (4 + 5)",
            [("Explain generators", "research"), ("compute 3 * (4 + 5)", "calculate")],
        ),
        (
            "How do decorators work and how does yield work?",
            [("How do decorators work", "research"), ("how does yield work?", "research")],
        ),
        ("what is 2+2? what is 2+2?", [("what is 2+2?", "calculate")]),
        ("Summarize: A b c. D e f.", [("Summarize: A b c. D e f.", "summarize")]),
        (PROSE, [(PROSE, "summarize")]),
        ("   ", []),
    ],
)
def test_plan(question: str, steps: list[tuple[str, str]]) -> None:
    assert plan(question) == [Step(text, skill) for text, skill in steps]


def test_long_text_needs_length_sentences_and_no_question() -> None:
    assert is_long_text(PROSE)
    assert not is_long_text(PROSE + " Why?")
    assert not is_long_text("Short. Text. Here.")


def test_compose_orders_answers_and_merges_citations() -> None:
    cite = Citation("knowledge:with", "with", "researcher")
    outcomes = [
        Outcome(Step("What is with", "research"), Reply("about with", citations=(cite,))),
        Outcome(Step("what is 1/0", "calculate"), error="calculator: task failed"),
        Outcome(Step("with again", "research"), Reply("again", citations=(cite,))),
    ]
    reply = compose(outcomes)
    assert reply.text.split("\n\n") == [
        "Q: What is with\nA: about with",
        "Q: what is 1/0\nA: (no answer: calculator: task failed)",
        "Q: with again\nA: again",
    ]
    assert reply.citations == (cite,)
    assert reply.data is not None
    assert [s["error"] for s in reply.data["steps"]] == [None, "calculator: task failed", None]
    single = compose([Outcome(Step("q", "calculate"), Reply("4", data={"value": 4}))])
    assert single.text == "4"
    assert single.data == {
        "steps": [
            {
                "question": "q",
                "skill": "calculate",
                "answer": "4",
                "data": {"value": 4},
                "error": None,
            }
        ]
    }


# -- the skills, run against real tool servers -------------------------------------


@dataclass
class LocalContext:
    """A SkillContext outside the runtime: real tools and peers, progress kept in a list."""

    tools: ToolCaller
    peers: Delegator
    agent_name: str = "test"
    task_id: str = "task-1"
    context_id: str = "ctx-1"
    said: list[str] = field(default_factory=list)

    async def progress(self, text: str) -> None:
        self.said.append(text)


@contextlib.asynccontextmanager
async def local_context() -> AsyncIterator[LocalContext]:
    async with (
        registry_client() as registry,
        httpx.AsyncClient(timeout=10) as http,
        serve(build_tool_server_app(create_calc(), HostingConfig(service="calc"))) as calc,
        serve(
            build_tool_server_app(create_knowledge(), HostingConfig(service="knowledge"))
        ) as knowledge,
    ):
        await register(registry, "calc", "calc-1", mcp_registration(calc + "/mcp"))
        await register(registry, "knowledge", "k-1", mcp_registration(knowledge + "/mcp"))
        yield LocalContext(
            tools=MeshTools(registry, http=http, gateway_url=None),
            # No agents are registered: every delegation finds no peer.
            peers=PeerClient(registry, http, gateway_url=None, self_name="planner"),
        )


def skill(agent_skill: str, text: str, **metadata: object) -> IncomingMessage:
    del agent_skill  # names the skill at the call site only
    return IncomingMessage(text=text, metadata=metadata)


@pytest.mark.anyio
async def test_skills_on_real_tool_servers() -> None:
    async with local_context() as ctx:
        calculate = calculator.skills["calculate"].fn
        answer = await calculate(skill("calculate", "what is 17 times 23?"), ctx)
        assert answer == Reply("17 * 23 = 391", data={"expression": "17 * 23", "value": 391})
        assert ctx.said == ["evaluating 17 * 23"]
        with pytest.raises(SkillError, match="found no arithmetic"):
            await calculate(skill("calculate", "what is love?"), ctx)
        with pytest.raises(SkillError, match=r"cannot evaluate 1 / 0: .*division by zero"):
            await calculate(skill("calculate", "what is 1/0?"), ctx)

        research = researcher.skills["research"].fn
        found = await research(skill("research", "What does the with statement do?"), ctx)
        assert isinstance(found, Reply)
        assert found.citations[0].source == "knowledge:with"
        # "for" is on most pages; knowledge puts the topic a query names first.
        loop = await research(skill("research", "Explain the for statement"), ctx)
        assert isinstance(loop, Reply)
        assert loop.citations[0].source == "knowledge:for"
        # Nothing matches the subject; the question's framing is not searched instead.
        empty = await research(skill("research", "What is qqqxz?"), ctx)
        assert isinstance(empty, Reply)
        assert empty.citations == ()
        with pytest.raises(SkillError, match="ask a question"):
            await research(skill("research", "  "), ctx)


@pytest.mark.anyio
async def test_summarizer_skill_reads_text_and_length() -> None:
    async with local_context() as ctx:
        run = summarizer.skills["summarize"].fn
        reply = await run(IncomingMessage(text="Summarize: " + PROSE), ctx)
        assert isinstance(reply, Reply)
        assert reply.data == {"sentences": 2, "of": 6, "kept": [0, 1]}
        longer = await run(IncomingMessage(text=PROSE, metadata={"sentences": 4}), ctx)
        assert isinstance(longer, Reply)
        assert longer.data is not None
        assert longer.data["sentences"] == 4
        from_data = await run(
            IncomingMessage(text="", data=({"text": PROSE, "sentences": 1},)), ctx
        )
        assert isinstance(from_data, Reply)
        assert from_data.data == {"sentences": 1, "of": 6, "kept": [0]}
        with pytest.raises(SkillError, match="no text"):
            await run(IncomingMessage(text="Summarize:"), ctx)


@pytest.mark.anyio
async def test_planner_fails_only_when_no_part_is_answered() -> None:
    async with local_context() as ctx:
        run = planner.skills["answer"].fn
        with pytest.raises(SkillError, match="no part of the question could be answered"):
            await run(IncomingMessage(text="What is a lambda? What is 2+2?"), ctx)
        assert ctx.said == [
            "step 1/2: asking a research agent: What is a lambda?",
            "step 2/2: asking a calculate agent: What is 2+2?",
        ]
        with pytest.raises(SkillError, match="ask a question"):
            await run(IncomingMessage(text=" "), ctx)
