"""Splitting a question with the optional LLM: its parts as a JSON list, checked strictly.

The model gets the question and is asked for a JSON array of strings, one
self-contained question per element, in the order asked. Its answer is used
only when it is exactly that (optionally inside one Markdown code fence): a
non-empty list of at most :data:`MAX_PARTS` printable strings, none blank or
longer than :data:`MAX_PART_CHARS`. Anything else is :class:`UnusablePlan`,
and the planner splits by rules instead. Each part then goes to a skill the
same way as a rule-split part (:func:`~agents.planner.split.skill_for`).
"""

from __future__ import annotations

import json
import re

from agents.planner.split import Step, skill_for
from agents.sdk import LanguageModel

__all__ = [
    "MAX_LLM_QUESTION_CHARS",
    "MAX_PARTS",
    "MAX_PART_CHARS",
    "SYSTEM_PROMPT",
    "UnusablePlan",
    "parse_parts",
    "plan_with_llm",
]

#: A longer question is split by rules without asking the model.
MAX_LLM_QUESTION_CHARS = 4_000
#: The most parts a model's split may have.
MAX_PARTS = 8
#: The longest part a model's split may have.
MAX_PART_CHARS = 1_000

SYSTEM_PROMPT = (
    "You split a user's message into the separate questions it asks. "
    "Answer with a JSON array of strings and nothing else: one string per question, "
    "in the order they are asked, each understandable on its own (repeat the subject "
    'instead of writing "it"). A message that asks one thing is an array of one string. '
    "Copy arithmetic expressions exactly as written. Do not answer the questions."
)

_FENCE = re.compile(r"```(?:json)?\s*\n?(.*?)\n?\s*```", re.DOTALL | re.IGNORECASE)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


class UnusablePlan(ValueError):
    """The model's answer is not a usable list of parts (the message says why)."""


def parse_parts(answer: str) -> list[str]:
    """The parts in a model's ``answer``; :class:`UnusablePlan` unless it is exactly a list.

    Whitespace inside a part is collapsed; a part repeated (ignoring case) is kept once.
    """
    text = answer.strip()
    if fenced := _FENCE.fullmatch(text):
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError:
        raise UnusablePlan("the LLM's answer is not JSON") from None
    if not isinstance(value, list):
        raise UnusablePlan(f"the LLM's answer is {_json_type(value)}, not a list")
    if not value:
        raise UnusablePlan("the LLM's list is empty")
    if len(value) > MAX_PARTS:
        raise UnusablePlan(f"the LLM's list has {len(value)} parts, more than {MAX_PARTS}")
    parts: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise UnusablePlan(f"a part in the LLM's list is {_json_type(item)}, not a string")
        part = " ".join(item.split())
        if len(part) < 2:
            raise UnusablePlan("a part in the LLM's list is blank")
        if len(part) > MAX_PART_CHARS:
            raise UnusablePlan(
                f"a part in the LLM's list is longer than {MAX_PART_CHARS} characters"
            )
        if not part.isprintable():
            raise UnusablePlan("a part in the LLM's list holds control characters")
        if part.lower() not in (p.lower() for p in parts):
            parts.append(part)
    return parts


async def plan_with_llm(llm: LanguageModel, question: str) -> list[Step]:
    """The steps of ``question`` as the model splits it.

    Raises :class:`UnusablePlan` for a question too long to send or an answer
    that is not a list of parts, and whatever ``llm`` raises (for
    :class:`~agents.llm.ChatClient`, :class:`~agents.errors.LlmUnavailable`).
    """
    question = question.strip()
    if len(question) > MAX_LLM_QUESTION_CHARS:
        raise UnusablePlan(
            f"the question is too long for the LLM (over {MAX_LLM_QUESTION_CHARS} characters)"
        )
    parts = parse_parts(await llm.complete(SYSTEM_PROMPT, question))
    return [Step(part, skill_for(part)) for part in parts]
