"""Arithmetic on `simpleeval <https://github.com/danthedeckie/simpleeval>`_, never ``eval``.

Only numbers, the arithmetic operators and a fixed set of math functions and
constants. Names, attributes, subscripts, strings, comparisons, keywords and
statements are refused before anything runs; so are long or deeply nested
inputs, and operations whose result would be huge (``9**9**9``).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

import simpleeval  # type: ignore[import-untyped]

__all__ = ["MAX_EXPRESSION_CHARS", "CalcError", "evaluate"]

MAX_EXPRESSION_CHARS = 1_000
MAX_DEPTH = 50
MAX_INT_BITS = 10_000  # ~3,000 decimal digits
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000

Number = int | float


class CalcError(ValueError):
    """The expression was refused or could not be computed; the message says why."""


def _number(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalcError(f"only real numbers are allowed, not {type(value).__name__}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalcError(f"result too large (over {MAX_INT_BITS} bits)")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalcError("result is not a finite number (overflow)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalcError(f"exponent {exponent:g} is over the limit of {MAX_EXPONENT}")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise CalcError(f"result too large (over {MAX_INT_BITS} bits)")
    result = base**exponent
    if isinstance(result, complex):
        raise CalcError("the result is a complex number")
    return result


def _multiply(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise CalcError(f"result too large (over {MAX_INT_BITS} bits)")
    return a * b


def _checked(fn: Callable[..., Any]) -> Callable[..., Number]:
    def call(*args: Any) -> Number:
        return _number(fn(*(_number(a) for a in args)))

    return call


def _factorial(n: Number) -> int:
    if not isinstance(n, int) or n < 0:
        raise CalcError("factorial takes a non-negative integer")
    if n > MAX_FACTORIAL:
        raise CalcError(f"factorial is limited to n <= {MAX_FACTORIAL}")
    return math.factorial(n)


_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_MATH: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "cbrt": math.cbrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "floor": math.floor,
    "ceil": math.ceil,
    "trunc": math.trunc,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "hypot": math.hypot,
    "degrees": math.degrees,
    "radians": math.radians,
    "gcd": math.gcd,
    "factorial": _factorial,
}
_FUNCTIONS = {name: _checked(fn) for name, fn in _MATH.items()}
_NAMES = {"pi": math.pi, "e": math.e, "tau": math.tau}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    *_OPERATORS,
)


def _parse(expression: str) -> ast.expr:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalcError(f"expression is over {MAX_EXPRESSION_CHARS} characters")
    if not expression.strip():
        raise CalcError("the expression is empty")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else "cannot be parsed"
        raise CalcError(f"not a valid expression: {detail}") from None
    _check(tree, 0)
    return tree.body


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CalcError(f"the expression is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(node, _ALLOWED_NODES):
        raise CalcError(
            f"{_describe(node)} is not allowed (numbers, + - * / // % ** and functions)"
        )
    if isinstance(node, ast.Constant) and (
        isinstance(node.value, bool) or not isinstance(node.value, int | float)
    ):
        raise CalcError(f"only real numbers are allowed, not {type(node.value).__name__}")
    if isinstance(node, ast.Name) and node.id not in _NAMES and node.id not in _FUNCTIONS:
        raise CalcError(f"unknown name {node.id!r}; known: {', '.join(sorted(_NAMES))}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else "that"
            raise CalcError(f"unknown function {name!r}; known: {', '.join(sorted(_FUNCTIONS))}")
        if node.keywords:
            raise CalcError("keyword arguments are not allowed")
    for child in ast.iter_child_nodes(node):
        _check(child, depth + 1)


def _describe(node: ast.AST) -> str:
    return {
        ast.Attribute: "attribute access",
        ast.Subscript: "subscripting",
        ast.Compare: "comparison",
        ast.BoolOp: "and/or",
        ast.Lambda: "lambda",
    }.get(type(node), type(node).__name__)


def evaluate(expression: str) -> Number:
    """The value of an arithmetic ``expression``; :class:`CalcError` says why not."""
    body = _parse(expression)
    evaluator = simpleeval.SimpleEval(operators=_OPERATORS, functions=_FUNCTIONS, names=_NAMES)
    try:
        value = evaluator.eval(expression, previously_parsed=body)
    except CalcError:
        raise
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except OverflowError:
        raise CalcError("numeric overflow: the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise CalcError(f"cannot compute: {exc}") from None
    except simpleeval.InvalidExpression as exc:
        raise CalcError(str(exc)) from None
    return _number(value)
