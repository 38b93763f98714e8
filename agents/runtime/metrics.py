"""Prometheus metrics of an agent's skills."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["OUTCOMES", "SkillMetrics"]

#: The ``outcome`` label values: how a skill run ended.
OUTCOMES = ("completed", "failed", "error", "canceled")


class SkillMetrics:
    """Runs, latency and in-flight count of skills, by agent and skill.

    ``failed`` is a :class:`~agents.sdk.SkillError` (or a message naming no
    skill, counted under skill ``unknown``); ``error`` an unexpected exception.
    """

    def __init__(self, registry: CollectorRegistry, agent: str) -> None:
        self.agent = agent
        self.runs = Counter(
            "meshgate_agent_skill_runs",
            "Skill runs finished, by agent, skill and outcome.",
            ["agent", "skill", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "meshgate_agent_skill_seconds",
            "Time from a skill's start to its end, by agent and skill.",
            ["agent", "skill"],
            registry=registry,
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
                60,
            ),
        )
        self.in_flight = Gauge(
            "meshgate_agent_skills_in_flight",
            "Skills running now, by agent.",
            ["agent"],
            registry=registry,
        )
        self.in_flight.labels(agent=agent).set(0)

    def finished(self, skill: str, outcome: str, seconds: float | None) -> None:
        """Count one run; ``seconds`` is None when the skill never started."""
        self.runs.labels(agent=self.agent, skill=skill, outcome=outcome).inc()
        if seconds is not None:
            self.latency.labels(agent=self.agent, skill=skill).observe(seconds)
