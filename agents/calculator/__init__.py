"""``calculator``: arithmetic in plain questions, worked out by the ``calc`` tool server."""

from agents.calculator.agent import agent
from agents.calculator.extract import find_expression, has_arithmetic

__all__ = ["agent", "find_expression", "has_arithmetic"]
