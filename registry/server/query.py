"""Query parameters of the list endpoints: blocking-query index and wait, flags."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from registry.errors import FieldError, InvalidRequest

__all__ = ["Blocking", "parse_blocking", "parse_bool", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: Consul's default and ceiling for a blocking query's wait.
MAX_WAIT_SECONDS = 300.0


def parse_duration(text: str, field: str) -> float:
    """Seconds in a Go-style duration (``30s``, ``1m30s``, ``250ms``); a bare number is seconds."""
    text = text.strip()
    try:
        return _non_negative(float(text), field)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise InvalidRequest(
            f"invalid {field}",
            errors=[FieldError(field, "expected a duration such as 30s, 1m30s or 250ms")],
        )
    return _non_negative(total, field)


def _non_negative(value: float, field: str) -> float:
    if not value >= 0 or value == float("inf"):
        raise InvalidRequest(f"invalid {field}", errors=[FieldError(field, "must be >= 0")])
    return value


def parse_bool(params: QueryParams, name: str) -> bool:
    """``?passing``, ``?passing=true|1|yes`` are true; ``false|0|no`` false."""
    if name not in params:
        return False
    value = params[name].strip().lower()
    if value in ("", "true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
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
    if "index" not in params:
        return None
    raw = params["index"].strip()
    if not raw.isdigit() or len(raw) > 19:
        raise InvalidRequest(
            "invalid index", errors=[FieldError("index", "expected a non-negative integer")]
        )
    wait = parse_duration(params["wait"], "wait") if "wait" in params else max_wait
    return Blocking(index=int(raw), wait=min(wait, max_wait))
