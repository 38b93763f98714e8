"""``calc``: safe arithmetic (simpleeval, never ``eval``) and descriptive statistics."""

from mcp_servers.calc.evaluator import CalcError, evaluate
from mcp_servers.calc.server import Evaluation, Statistics, create_server

__all__ = ["CalcError", "Evaluation", "Statistics", "create_server", "evaluate"]
