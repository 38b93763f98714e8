"""Query parameters of the list endpoints: blocking-query index and wait, flags."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from registry.errors import FieldError, InvalidRequest

__all__ = [
    "DURATION_PATTERN",
    "FALSE_WORDS",
    "TRUE_WORDS",
    "Blocking",
    "parse_blocking",
    "parse_bool",
    "parse_duration",
]

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
# Exactly what the OpenAPI document's pattern admits (ASCII digits, no blanks).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$|^[0-9]+(\.[0-9]+)?$"
_DURATION_TEXT = re.compile(DURATION_PATTERN)
#: The spellings of a flag (``?passing`` alone is true), exactly: the document lists them.
TRUE_WORDS = ("", "true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: Consul's default and ceiling for a blocking query's wait.
MAX_WAIT_SECONDS = 300.0


def parse_duration(text: str, field: str) -> float:
    """Seconds in a Go-style duration (``30s``, ``1m30s``, ``250ms``); a bare number is seconds."""
    if not _DURATION_TEXT.match(text) or text.endswith("\n"):
        raise InvalidRequest(
            f"invalid {field}",
            errors=[FieldError(field, "expected a duration such as 30s, 1m30s or 250ms")],
        )
    if text[-1].isdigit():
        return _non_negative(float(text), field)
    total = sum(float(m[1]) * _UNIT_SECONDS[m[2]] for m in _DURATION.finditer(text))
    return _non_negative(total, field)


def _non_negative(value: float, field: str) -> float:
    if not value >= 0 or value == float("inf"):
        raise InvalidRequest(f"invalid {field}", errors=[FieldError(field, "must be >= 0")])
    return value


def parse_bool(params: QueryParams, name: str) -> bool:
    """``?passing``, ``?passing=true|1|yes`` are true; ``false|0|no`` false (as documented)."""
    if name not in params:
        return False
    value = params[name]
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise InvalidRequest(f"invalid {name}", errors=[FieldError(name, "expected true or false")])


@dataclass(frozen=True)
class Blocking:
    """A blocking query: hold until the index moves past ``index`` or ``wait`` passes."""

    index: int
    wait: float

    def jittered_wait(self) -> float:
        # Consul adds up to wait/16 so that many watchers do not return together.
        return self.wait + random.uniform(0, self.wait / 16)  # noqa: S311 - not security


def parse_blocking(params: QueryParams, *, max_wait: float = MAX_WAIT_SECONDS) -> Blocking | None:
    """The blocking query a request asks for, or ``None`` for a plain read."""
    # A malformed wait is refused even without an index: it is a mistake either way.
    wait = parse_duration(params["wait"], "wait") if "wait" in params else max_wait
    if "index" not in params:
        return None
    raw = params["index"].strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise InvalidRequest(
            "invalid index", errors=[FieldError("index", "expected a non-negative integer")]
        )
    return Blocking(index=int(raw), wait=min(wait, max_wait))
