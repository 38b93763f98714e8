"""``planner``: splits a question into parts and delegates each to a peer by skill."""

from agents.planner.agent import Outcome, agent, compose
from agents.planner.split import Step, is_long_text, plan

__all__ = ["Outcome", "Step", "agent", "compose", "is_long_text", "plan"]
