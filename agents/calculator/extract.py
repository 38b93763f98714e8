"""Find the arithmetic in a sentence: "what is 17 times 23?" -> ``17 * 23``.

Words for operators become symbols first; then the text is cut into runs of
expression tokens (numbers, operators, parentheses, known function names and
constants), and the best run wins: one with an operator or a function call
over a bare number, then the longest. The result is only a candidate: the
``calc`` tool server's evaluator decides what is valid arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FUNCTIONS", "find_expression", "has_arithmetic"]

#: Function names the calc evaluator knows (its tool description lists them).
_FUNCTION_NAMES = """abs round min max sqrt cbrt exp log log2 log10 floor ceil trunc sin cos
tan asin acos atan atan2 hypot degrees radians gcd factorial"""
FUNCTIONS = frozenset(_FUNCTION_NAMES.split())
# "e" is left out: as a word in a question it is rarely Euler's number.
_CONSTANTS = frozenset(("pi", "tau"))

_WORDS = (
    (r"(\d+(?:\.\d+)?)\s*%\s*of\b", r"\1 / 100 * "),  # "15% of 80"
    (r"\bmultiplied\s+by\b", " * "),
    (r"\bdivided\s+by\b", " / "),
    (r"\bto\s+the\s+power\s+of\b", " ** "),
    (r"\bto\s+the\b", " ** "),  # "2 to the 10th"
    (r"\btimes\b", " * "),
    (r"\bplus\b", " + "),
    (r"\bminus\b", " - "),
    (r"\bmod(?:ulo)?\b", " % "),
    (r"\bsquared\b", " ** 2 "),
    (r"\bcubed\b", " ** 3 "),
    (r"(?<=\d)(?:st|nd|rd|th)\b", ""),
)
# The multiplication and division signs, the minus sign and the en dash.
_SYMBOLS = str.maketrans({"\u00d7": "*", "\u00f7": "/", "\u2212": "-", "\u2013": "-", "^": "#"})
_TOKEN = re.compile(
    # Thousands separators only in groups of three: "1,000" is a number, "1,2" a list.
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+)"
    r"|(?P<op>\*\*|//|#|[-+*/%])"
    r"|(?P<open>\()|(?P<close>\))|(?P<comma>,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.DOTALL,
)


@dataclass
class _Run:
    tokens: list[tuple[str, str]]

    @property
    def score(self) -> tuple[int, int]:
        kinds = {kind for kind, _ in self.tokens}
        worked = "op" in kinds or any(k == "name" and v in FUNCTIONS for k, v in self.tokens)
        return (1 if worked else 0, len(self.tokens))

    def text(self) -> str:
        out = ""
        previous = "op"  # a sign at the start is unary
        for kind, value in self.tokens:
            if kind == "op" and previous not in ("op", "open", "comma"):
                out += f" {value} "
            elif kind == "comma":
                out += ", "
            else:
                out += value
            previous = kind
        return " ".join(out.split())


def _normalised(text: str) -> str:
    text = text.translate(_SYMBOLS)
    text = re.sub(r"(?<=\d)\s*[xX]\s*(?=[\d(])", " * ", text)  # "17 x 23"
    for pattern, symbol in _WORDS:
        text = re.sub(pattern, symbol, text, flags=re.IGNORECASE)
    return text


def _runs(text: str) -> list[_Run]:
    runs: list[_Run] = []
    current: list[tuple[str, str]] = []
    depth = 0

    def close() -> None:
        nonlocal current, depth
        if current:
            runs.append(_Run(current))
        current, depth = [], 0

    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        value = match.group()
        if kind == "space":
            continue
        if kind == "num":
            value = value.replace(",", "")
        elif kind == "op" and value == "#":
            value = "**"
        elif kind == "name":
            lowered = value.lower()
            if lowered not in FUNCTIONS and lowered not in _CONSTANTS:
                close()
                continue
            value = lowered
        elif kind == "open":
            depth += 1
        elif kind == "close":
            if depth == 0:
                close()
                continue
            depth -= 1
        elif (kind == "comma" and depth == 0) or kind == "other":
            close()
            continue
        current.append((kind, value))
    close()
    return [trimmed for run in runs if (trimmed := _trim(run)) is not None]


def _trim(run: _Run) -> _Run | None:
    tokens = list(run.tokens)
    # An expression starts with a value, "(", a function or a sign; ends with a value or ")".
    while tokens and not (tokens[0][0] in ("num", "name", "open") or tokens[0][1] in ("-", "+")):
        tokens.pop(0)
    while tokens and tokens[-1][0] not in ("num", "close") and tokens[-1][1] not in _CONSTANTS:
        tokens.pop()
    if not tokens or not any(k == "num" or v in _CONSTANTS for k, v in tokens):
        return None
    depth = 0
    for kind, _ in tokens:
        depth += {"open": 1, "close": -1}.get(kind, 0)
    if depth != 0:
        return None  # unbalanced: not something to guess at
    return _Run(tokens)


def find_expression(text: str) -> str | None:
    """The arithmetic expression ``text`` asks about, or None if it holds none."""
    runs = _runs(_normalised(text))
    if not runs:
        return None
    return max(runs, key=lambda run: run.score).text()


def has_arithmetic(text: str) -> bool:
    """Whether ``text`` holds arithmetic to work out (an operator or a function call)."""
    return any(run.score[0] for run in _runs(_normalised(text)))
