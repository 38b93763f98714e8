"""Drive every operation of an OpenAPI document with schemathesis, and count the cases.

Each operation gets positive cases (valid by the document: the answer must be
one the document describes) and negative ones (invalid by it: the answer must
be a 4xx the document describes, never a 5xx). Every answer is checked against
the document: status code, content type, headers and body schema.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

__all__ = ["CHECKS", "FuzzRun", "fuzz", "scale"]

#: What every answer is held to (schemathesis's own checks).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def scale() -> int:
    """How many times the default case counts ``make fuzz`` runs (1 in ``make test``)."""
    return max(1, int(os.environ.get("MESHGATE_FUZZ_SCALE", "1")))


@dataclass
class FuzzRun:
    """Cases sent per operation and mode, and the statuses answered."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def fuzz(
    schema: schemathesis.BaseSchema,
    base_url: str,
    *,
    examples: int,
    headers: dict[str, str] | None = None,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    pinned: Mapping[str, dict[str, Any]] | None = None,
) -> FuzzRun:
    """Send up to ``examples`` cases per operation and mode; raise on the first failed check.

    ``pinned`` maps a path template to path parameters that name something that
    exists (an agent): its operations get a second pass with them, so generated
    bodies reach past the 404 of a random name.
    """
    pinned = pinned or {}
    run = FuzzRun()
    started = time.perf_counter()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            passes = [(mode, None) for mode in modes]
            if operation.path in pinned:
                passes += [(mode, pinned[operation.path]) for mode in modes]
            for mode, params in passes:
                label = f"{operation.label} [{mode.value}{'' if params is None else ', pinned'}]"
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)
                try:
                    _cases(strategy, examples, session, base_url, headers, run, label)()
                except Unsatisfiable:
                    # No parameters and no body: nothing can be made invalid.
                    assert mode is GenerationMode.NEGATIVE, label
                print(f"  {label}: {run.cases[label]} cases", flush=True)
    run.seconds = time.perf_counter() - started
    return run


def _cases(
    strategy: SearchStrategy[schemathesis.Case],
    examples: int,
    session: requests.Session,
    base_url: str,
    headers: dict[str, str] | None,
    run: FuzzRun,
    label: str,
) -> Callable[[], None]:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=scale() == 1,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=base_url, session=session, headers=headers, checks=CHECKS, timeout=10
        )
        run.cases[label] += 1
        run.statuses[response.status_code] += 1

    return check
