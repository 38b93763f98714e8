"""The planner agent: cuts a question into parts and has a peer answer each.

Each part goes, by skill, to whichever agent the mesh finds for it
(``ctx.peers.ask(skill=...)``), with a progress report before each delegation;
the answers become one reply with every peer's citations. A part no peer could
answer is said so in the reply; only when every part fails does the task fail.

With a language model configured (``ctx.llm``) the model splits the question
(:mod:`agents.planner.llm_split`); when it cannot be reached or its answer is
not a valid list of parts, the planner says so in a progress report and
splits by rules. Then, and only then, the reply's data say which was used:
``method`` is ``"llm"`` or ``"rules"`` (with ``fallback``, the reason, when the
model was asked and failed). Without a model the split is the rules', as ever.

Its ``/mcp`` has ``plan_question``: the parts and their skills by rules, without asking anyone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, Field

from agents.planner.llm_split import UnusablePlan, plan_with_llm
from agents.planner.split import Step, is_long_text, plan
from agents.sdk import (
    READ_ONLY,
    Agent,
    Citation,
    IncomingMessage,
    Reply,
    SkillContext,
    SkillError,
    language_model,
)

__all__ = ["MAX_QUESTION_CHARS", "Outcome", "PlannedStep", "QuestionPlan", "agent", "compose"]

#: The longest question (or text to summarise) the ``plan_question`` tool takes.
MAX_QUESTION_CHARS = 100_000

logger = logging.getLogger("meshgate.agent.planner")


agent = Agent(
    "planner",
    "Answers multi-part questions by delegating each part to a peer agent with the skill.",
    tags=["planning"],
)


@dataclass(frozen=True)
class Outcome:
    """One step and what came of it: a reply, or why there is none."""

    step: Step
    reply: Reply | None = None
    error: str = ""


@agent.skill(
    "answer",
    tags=["planning", "question-answering"],
    examples=["What does the with statement do, and what is 17*23?"],
)
async def answer(message: IncomingMessage, ctx: SkillContext) -> Reply:
    """Split the question into parts, delegate each to a peer by skill, compose one answer."""
    if not message.text.strip():
        raise SkillError("ask a question")
    steps, method = await _split(message.text, ctx)
    outcomes: list[Outcome] = []
    for number, step in enumerate(steps, 1):
        await ctx.progress(f"step {number}/{len(steps)}: asking a {step.skill} agent: {step.text}")
        try:
            reply = await ctx.peers.ask(step.text, skill=step.skill, context_id=ctx.context_id)
        except SkillError as exc:  # agents.errors.AgentError included
            outcomes.append(Outcome(step, error=str(exc)))
        else:
            outcomes.append(Outcome(step, reply))
    if not any(o.reply for o in outcomes):
        reasons = "; ".join(o.error for o in outcomes)
        raise SkillError(f"no part of the question could be answered: {reasons}")
    reply = compose(outcomes)
    if not method:
        return reply
    return Reply(reply.text, data={**(reply.data or {}), **method}, citations=reply.citations)


async def _split(text: str, ctx: SkillContext) -> tuple[list[Step], dict[str, str]]:
    """The steps, and what the reply's data say of how they were found.

    Without a model: the rules' steps and nothing to say. With one: its steps
    and ``method: llm``, or on any failure the rules' steps, ``method: rules``
    and the ``fallback`` reason (also a progress report). Prose to summarise
    is one step either way; the model is not asked to cut it.
    """
    llm = language_model(ctx)
    if llm is None:
        return plan(text), {}
    if is_long_text(text):
        return plan(text), {"method": "rules"}
    await ctx.progress("asking the LLM to split the question")
    try:
        steps = await plan_with_llm(llm, text)
    except (UnusablePlan, SkillError) as exc:  # agents.errors.LlmUnavailable included
        reason = str(exc)
    except Exception as exc:  # a LanguageModel outside the contract: its text may say anything
        logger.warning("the language model failed", exc_info=True)
        reason = f"the LLM failed ({type(exc).__name__})"
    else:
        return steps, {"method": "llm"}
    logger.info("task %s: %s; splitting by rules", ctx.task_id, reason)
    await ctx.progress(f"{reason}; splitting the question by rules instead")
    return plan(text), {"method": "rules", "fallback": reason}


def compose(outcomes: Sequence[Outcome]) -> Reply:
    """One reply from the steps' outcomes: their texts in order, all citations once."""
    if len(outcomes) == 1 and outcomes[0].reply is not None:
        only = outcomes[0].reply
        return Reply(
            text=only.text,
            data={"steps": [_step_data(outcomes[0])]},
            citations=only.citations,
        )
    sections = []
    for outcome in outcomes:
        said = outcome.reply.text if outcome.reply else f"(no answer: {outcome.error})"
        sections.append(f"Q: {outcome.step.text}\nA: {said}")
    citations: dict[Citation, None] = {}
    for outcome in outcomes:
        for citation in outcome.reply.citations if outcome.reply else ():
            citations.setdefault(citation)
    return Reply(
        text="\n\n".join(sections),
        data={"steps": [_step_data(o) for o in outcomes]},
        citations=tuple(citations),
    )


def _step_data(outcome: Outcome) -> dict[str, object]:
    reply = outcome.reply
    return {
        "question": outcome.step.text,
        "skill": outcome.step.skill,
        "answer": reply.text if reply else None,
        "data": dict(reply.data) if reply and reply.data is not None else None,
        "error": outcome.error or None,
    }


class PlannedStep(BaseModel):
    question: str = Field(description="One part of the question (or the whole text).")
    skill: str = Field(description="The skill of the peer agent it would be delegated to.")


class QuestionPlan(BaseModel):
    steps: list[PlannedStep] = Field(
        description="In the order the question asks them; none for a blank question."
    )


@agent.tool(title="Plan a question", annotations=READ_ONLY)
def plan_question(
    question: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_QUESTION_CHARS,
            description="A question, possibly of several parts, or a text to summarise.",
        ),
    ],
) -> QuestionPlan:
    """How the answer skill would split the question by rules, and the skill of each part.

    Never asks a language model: with one configured, the answer skill's split may differ.
    """
    return QuestionPlan(
        steps=[PlannedStep(question=step.text, skill=step.skill) for step in plan(question)]
    )
