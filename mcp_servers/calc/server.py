"""The ``calc`` tool server: safe arithmetic and descriptive statistics."""

from __future__ import annotations

import math
import statistics as stats
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_servers.calc.evaluator import MAX_EXPRESSION_CHARS, CalcError, evaluate
from mcp_servers.quiet import quiet_server

__all__ = ["MAX_NUMBERS", "Evaluation", "Statistics", "create_server"]

MAX_NUMBERS = 10_000
_PURE = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Evaluation(BaseModel):
    expression: str
    value: int | float = Field(description="The result (an integer when exact).")
    text: str = Field(description="The result as text, exactly.")


class Statistics(BaseModel):
    count: int
    mean: float
    median: float
    stdev: float | None = Field(description="Sample standard deviation; null for one number.")
    min: float
    max: float


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ToolError("the statistics overflow: numbers too large")
    return value


def create_server() -> MCPServer:
    """The calc server."""
    server = quiet_server("calc", instructions="Exact, safe arithmetic and statistics.")

    @server.tool(name="evaluate", title="Evaluate an arithmetic expression", annotations=_PURE)
    def evaluate_expression(
        expression: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_EXPRESSION_CHARS,
                description="Numbers, + - * / // % ** and parentheses; functions such as "
                "sqrt, abs, round, min, max, log, sin; constants pi, e, tau.",
            ),
        ],
    ) -> Evaluation:
        """Evaluate an arithmetic expression safely (no names, attributes or code)."""
        try:
            value = evaluate(expression)
        except CalcError as exc:
            raise ToolError(str(exc)) from None
        return Evaluation(expression=expression, value=value, text=repr(value))

    @server.tool(title="Describe a list of numbers", annotations=_PURE)
    def statistics(
        numbers: Annotated[
            list[FiniteFloat],
            Field(min_length=1, max_length=MAX_NUMBERS, description="The numbers to describe."),
        ],
    ) -> Statistics:
        """Count, mean, median, sample standard deviation, min and max of the numbers."""
        try:
            return Statistics(
                count=len(numbers),
                mean=_finite(stats.fmean(numbers)),
                median=_finite(float(stats.median(numbers))),
                stdev=_finite(stats.stdev(numbers)) if len(numbers) > 1 else None,
                min=min(numbers),
                max=max(numbers),
            )
        except (OverflowError, ValueError) as exc:
            raise ToolError(f"cannot describe these numbers: {exc}") from None

    return server
