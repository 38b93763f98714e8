"""The gateway's own tools: ``meshgate__find_agents`` answers from the route table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types

from gateway.table import RouteTable
from registry.models import Kind

__all__ = ["find_agents"]


def find_agents(table: RouteTable, arguments: Mapping[str, Any]) -> types.CallToolResult:
    """Routable agents offering ``skill`` and/or mentioning every word of ``text``."""
    skill = arguments.get("skill")
    text = arguments.get("text")
    words = str(text).lower().split() if isinstance(text, str) else []
    found: list[dict[str, Any]] = []
    for service, routes in sorted(table.routable_services.items()):
        if not routes or routes[0].kind is not Kind.A2A_AGENT:
            continue
        card = table.card(service) or {}
        skills = [s for s in card.get("skills") or [] if isinstance(s, Mapping)]
        ids = sorted({s for r in routes for s in r.skills})
        if isinstance(skill, str) and skill and skill not in ids:
            continue
        haystack = " ".join(
            [service, str(card.get("description", ""))]
            + [f"{s.get('id', '')} {s.get('name', '')} {s.get('description', '')}" for s in skills]
        ).lower()
        if not all(word in haystack for word in words):
            continue
        found.append(
            {
                "name": service,
                "description": str(card.get("description", "")),
                "skills": ids,
                "instances": len(routes),
            }
        )
    lines = [f"{a['name']}: {a['description']} (skills: {', '.join(a['skills'])})" for a in found]
    return types.CallToolResult(
        content=[types.TextContent(type="text", text="\n".join(lines) or "no agent matches")],
        structured_content={"agents": found},
    )
