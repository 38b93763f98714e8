"""The A2A 1.0 Agent Card of an :class:`~agents.sdk.Agent`."""

from __future__ import annotations

from typing import Any

from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol
from google.protobuf.json_format import MessageToDict

from agents.sdk import Agent

__all__ = ["MODES", "build_agent_card", "card_to_json"]

#: Input and output media types every skill accepts and produces.
MODES = ("text/plain", "application/json")


def build_agent_card(agent: Agent, base_url: str) -> AgentCard:
    """The card of ``agent`` served at ``base_url``.

    JSON-RPC is at the root of ``base_url`` (with a trailing slash: clients
    and conformance tools POST to the URL exactly); the HTTP+JSON binding
    shares the root (``/message:send``, ``/tasks/{id}``, ...). A skill
    without tags gets the agent's tags, or its own id: A2A requires tags.
    """
    if not agent.skills:
        raise ValueError(f"agent {agent.name!r} has no skills; define one with @agent.skill")
    root = base_url.rstrip("/")
    skills = [
        AgentSkill(
            id=spec.id,
            name=spec.name,
            description=spec.description,
            tags=list(spec.tags or agent.tags or (spec.id,)),
            examples=list(spec.examples),
        )
        for spec in agent.skills.values()
    ]
    return AgentCard(
        name=agent.name,
        description=agent.description,
        version=agent.version,
        supported_interfaces=[
            AgentInterface(
                url=root + "/",
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
            AgentInterface(
                url=root,
                protocol_binding=TransportProtocol.HTTP_JSON.value,
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=list(MODES),
        default_output_modes=list(MODES),
        skills=skills,
    )


def card_to_json(card: AgentCard) -> dict[str, Any]:
    """The card as A2A 1.0 JSON (camelCase), as the registry stores it.

    The SDK's card route also adds A2A 0.3 fields (``url``, ...) for old
    clients; the registry refuses those, so registrations use this form.
    """
    data: dict[str, Any] = MessageToDict(card)
    return data
