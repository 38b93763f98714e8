"""Between A2A messages and the plain values skills see.

How a message names its skill (first match wins): the message's metadata
``skill``; the request's metadata ``skill``; a data part ``{"skill": ...}``;
otherwise, when the agent has exactly one skill, that one.

A reply travels as one artifact named ``reply``: a text part with
:attr:`Reply.text`, then, when there is data or a citation, a data part
``{"data": <Reply.data or null>, "citations": [{"source", "title", "agent"}]}``
(media type ``application/json``). :func:`reply_from_parts` reads it back, with
whole numbers as ints again (see :func:`whole_numbers`).

A message that names no skill of the agent is refused with
:class:`~agents.errors.UnknownSkill`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.types import Message, Part
from google.protobuf.json_format import MessageToDict

from agents.errors import UnknownSkill
from agents.sdk import Agent, Citation, IncomingMessage, Reply, SkillSpec

__all__ = [
    "REPLY_ARTIFACT",
    "SKILL_KEY",
    "incoming_message",
    "reply_from_parts",
    "reply_parts",
    "select_skill",
    "whole_numbers",
]

SKILL_KEY = "skill"
REPLY_ARTIFACT = "reply"


def whole_numbers(value: Any) -> Any:
    """``value`` with every whole float, however deeply nested, as an int.

    protobuf's ``Value`` keeps every number as a double, so a reply's ``391``
    arrives as ``391.0``; JSON does not tell the two apart, and readers expect
    the int back. (A float the skill meant, such as ``2.0``, comes back as
    ``2`` too: an equal number. Integers beyond 2**53 were rounded on the way.)
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _data_values(parts: Iterable[Part]) -> list[Any]:
    return [MessageToDict(part.data) for part in parts if part.HasField("data")]


def incoming_message(message: Message) -> IncomingMessage:
    """The plain-value view of an A2A message (text parts joined by newlines)."""
    data = tuple(
        value if isinstance(value, dict) else {"value": value}
        for value in _data_values(message.parts)
    )
    return IncomingMessage(
        text="\n".join(part.text for part in message.parts if part.HasField("text")),
        data=data,
        context_id=message.context_id,
        task_id=message.task_id,
        message_id=message.message_id,
        metadata=MessageToDict(message.metadata),
    )


def _named_skill(incoming: IncomingMessage, request_metadata: Mapping[str, Any]) -> str | None:
    for source in (incoming.metadata, request_metadata, *incoming.data):
        name = source.get(SKILL_KEY)
        if isinstance(name, str) and name:
            return name
    return None


def select_skill(
    agent: Agent, incoming: IncomingMessage, request_metadata: Mapping[str, Any]
) -> SkillSpec:
    """The skill a message asks for, or :class:`UnknownSkill` naming the choices."""
    choices = ", ".join(agent.skills)
    name = _named_skill(incoming, request_metadata)
    if name is None:
        if len(agent.skills) == 1:
            return next(iter(agent.skills.values()))
        raise UnknownSkill(
            f"agent {agent.name!r} has several skills; name one in the message metadata "
            f"{SKILL_KEY!r} (one of: {choices})"
        )
    spec = agent.skills.get(name)
    if spec is None:
        raise UnknownSkill(
            f"agent {agent.name!r} has no skill {name[:64]!r}; its skills: {choices}"
        )
    return spec


def reply_parts(reply: Reply) -> list[Part]:
    """The parts of the ``reply`` artifact; raises TypeError if data is not JSON."""
    parts = [new_text_part(reply.text, "text/plain")]
    if reply.data is not None or reply.citations:
        payload = {
            "data": None if reply.data is None else dict(reply.data),
            "citations": [
                {"source": c.source, "title": c.title, "agent": c.agent} for c in reply.citations
            ],
        }
        # A JSON round trip: refuses what is not JSON (TypeError) and turns
        # tuples into lists before protobuf sees them.
        parts.append(new_data_part(json.loads(json.dumps(payload)), "application/json"))
    return parts


def reply_from_parts(parts: Iterable[Part]) -> Reply:
    """Read back a reply made by :func:`reply_parts` (any text-only answer works too).

    Whole numbers in the data are ints again (:func:`whole_numbers`).
    """
    items = list(parts)
    text = "\n".join(part.text for part in items if part.HasField("text"))
    data: Mapping[str, Any] | None = None
    citations: list[Citation] = []
    for value in _data_values(items):
        if isinstance(value, dict) and "citations" in value:
            raw = value.get("data")
            data = whole_numbers(raw) if isinstance(raw, dict) else None
            citations = [
                Citation(
                    source=str(c.get("source", "")),
                    title=str(c.get("title", "")),
                    agent=str(c.get("agent", "")),
                )
                for c in value.get("citations") or []
                if isinstance(c, dict)
            ]
            break
    return Reply(text=text, data=data, citations=tuple(citations))
