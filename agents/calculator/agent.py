"""The calculator agent: finds the arithmetic in a question and has ``calc`` work it out."""

from __future__ import annotations

from agents.calculator.extract import find_expression
from agents.sdk import Agent, IncomingMessage, Reply, SkillContext, SkillError

__all__ = ["agent"]

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
