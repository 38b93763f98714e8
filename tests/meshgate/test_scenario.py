"""The demo's step runner: every step runs, each result says what it saw."""

from __future__ import annotations

import pytest

from meshgate.scenario import Step, StepFailed, StepResult, run_steps

pytestmark = pytest.mark.anyio


async def test_a_failed_or_crashed_step_is_reported_and_the_next_still_runs() -> None:
    ran: list[str] = []

    async def passes() -> str:
        ran.append("passes")
        return "saw 391"

    async def fails() -> str:
        ran.append("fails")
        raise StepFailed("no citation in the answer")

    async def crashes() -> str:
        ran.append("crashes")
        raise KeyError("result")

    reported: list[StepResult] = []
    steps = [Step("one", passes), Step("two", fails), Step("three", crashes), Step("four", passes)]
    results = await run_steps(steps, reported.append)

    assert ran == ["passes", "fails", "crashes", "passes"]
    assert reported == results
    assert [(r.title, r.ok) for r in results] == [
        ("one", True),
        ("two", False),
        ("three", False),
        ("four", True),
    ]
    assert results[0].detail == "saw 391"
    assert results[1].detail == "no citation in the answer"
    assert results[2].detail == "KeyError: 'result'"
    assert all(r.seconds >= 0 for r in results)
