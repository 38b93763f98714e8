"""The calculator agent: finds the arithmetic in a question and has ``calc`` work it out.

Its ``/mcp`` has ``extract_expression``: the arithmetic it would evaluate, found
locally (evaluating is the ``calc`` tool server's job).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from agents.calculator.extract import find_expression, has_arithmetic
from agents.sdk import READ_ONLY, Agent, IncomingMessage, Reply, SkillContext, SkillError

__all__ = ["MAX_TEXT_CHARS", "FoundExpression", "agent"]

#: The longest text the ``extract_expression`` tool takes.
MAX_TEXT_CHARS = 4_000


agent = Agent(
    "calculator",
    "Works out the arithmetic in a question with the mesh's calc tool server.",
    tags=["math"],
)


@agent.skill(
    tags=["math", "arithmetic"],
    examples=["What is 17*23?", "What is 2 to the power of 10?", "sqrt(2) * 3"],
)
async def calculate(message: IncomingMessage, ctx: SkillContext) -> Reply:
    """Find the arithmetic expression in the text and evaluate it exactly."""
    expression = find_expression(message.text)
    if expression is None:
        raise SkillError(f"found no arithmetic in {message.text[:200]!r}")
    await ctx.progress(f"evaluating {expression}")
    result = await ctx.tools.call("calc", "evaluate", {"expression": expression})
    structured = result.structured if isinstance(result.structured, dict) else {}
    if result.is_error or "value" not in structured:
        raise SkillError(f"cannot evaluate {expression}: {result.text[:300]}")
    shown = structured.get("text") or str(structured["value"])
    return Reply(
        text=f"{expression} = {shown}",
        data={"expression": expression, "value": structured["value"]},
    )


class FoundExpression(BaseModel):
    expression: str | None = Field(
        description="The expression the calculate skill would have calc evaluate; "
        "null when the text holds none."
    )
    arithmetic: bool = Field(
        description="Whether there is arithmetic to work out (an operator or a function "
        "call), not just a number."
    )


@agent.tool(title="Find the arithmetic in a text", annotations=READ_ONLY)
def extract_expression(
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_TEXT_CHARS,
            description='A question or sentence, e.g. "what is 17 times 23?".',
        ),
    ],
) -> FoundExpression:
    """The arithmetic expression in the text, in calc's syntax ("17 times 23" -> 17 * 23)."""
    return FoundExpression(expression=find_expression(text), arithmetic=has_arithmetic(text))
