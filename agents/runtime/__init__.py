"""The agent runtime: an :class:`~agents.sdk.Agent` as an A2A 1.0 server with an MCP face.

:func:`build_agent_app` returns a Starlette app with the Agent Card, A2A
JSON-RPC at the root, the HTTP+JSON binding, the agent's tools at ``/mcp``,
``/healthz``, ``/readyz`` and ``/metrics``; its lifespan opens the durable
task store, registers the agent (``kind: a2a-agent``) and, on the way out,
drains in-flight tasks before deregistering.
"""

from agents.runtime.app import build_agent_app
from agents.runtime.card import build_agent_card, card_to_json
from agents.runtime.config import MEMORY_STORE, AgentConfig
from agents.runtime.wire import (
    SKILL_KEY,
    incoming_message,
    reply_from_parts,
    reply_parts,
    select_skill,
    whole_numbers,
)

__all__ = [
    "MEMORY_STORE",
    "SKILL_KEY",
    "AgentConfig",
    "build_agent_app",
    "build_agent_card",
    "card_to_json",
    "incoming_message",
    "reply_from_parts",
    "reply_parts",
    "select_skill",
    "whole_numbers",
]
