"""``planner``: splits a question into parts and delegates each to a peer by skill."""

from agents.planner.agent import Outcome, agent, compose
from agents.planner.llm_split import UnusablePlan, parse_parts, plan_with_llm
from agents.planner.split import Step, is_long_text, plan, skill_for

__all__ = [
    "Outcome",
    "Step",
    "UnusablePlan",
    "agent",
    "compose",
    "is_long_text",
    "parse_parts",
    "plan",
    "plan_with_llm",
    "skill_for",
]
