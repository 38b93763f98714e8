"""The aggregated tool list of ``/mcp``, built from the route table alone.

No upstream is asked at ``tools/list``: every instance registered its tools,
and agents' cards list their skills. Names are ``{service}__{tool}`` (clients
such as Claude accept only ``[A-Za-z0-9_-]{1,64}``); a name that does not fit is
shortened deterministically with a hash suffix, and :class:`Catalog` keeps the
reverse map. One catalog is built per route table and reused until it moves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

import mcp_types as types
from mcp.shared.inbound import find_invalid_x_mcp_header, x_mcp_header_map
from pydantic import ValidationError

from gateway.table import Route, RouteTable
from registry.models import Kind

__all__ = ["MESH", "Catalog", "CatalogCache", "Entry", "public_name"]

logger = logging.getLogger("meshgate.gateway.mcp")

#: The namespace of the gateway's own tools.
MESH = "meshgate"
_SEP = "__"
_VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LEN = 8

_SKILL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "The message to the agent."},
        "contextId": {
            "type": "string",
            "description": "Continue this A2A conversation (from an earlier answer).",
        },
    },
    "required": ["text"],
}
_MESH_TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "find_agents",
        "description": "Find the mesh's agents that are up, by skill id or by words "
        "in their names, descriptions and skills.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "skill": {"type": "string", "description": "A skill id, exactly."},
                "text": {"type": "string", "description": "Words to look for."},
            },
        },
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    {
        "name": "delegate",
        "description": "Send a message to an agent of the mesh (by name) or to any agent "
        "with a skill, and answer its reply.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "description": "The agent's name."},
                "skill": {"type": "string", "description": "A skill id."},
                "text": {"type": "string", "description": "The message."},
                "contextId": {"type": "string"},
            },
            "required": ["text"],
        },
    },
)


@dataclass(frozen=True, slots=True)
class Entry:
    """What a public tool name stands for."""

    kind: Literal["tool", "skill", "mesh"]
    #: The owning service (``meshgate`` for the gateway's own tools).
    service: str
    #: The upstream's tool name, the skill id, or the mesh operation.
    name: str
    #: Where the tool lives: the route's endpoint (tool servers) or ``mcp`` under an agent.
    path: str | None = None
    #: Annotated read-only and idempotent: its results may be cached.
    cacheable: bool = False
    #: Arguments its schema binds to ``Mcp-Param-*`` headers: (property path, header token).
    #: The SDK path checks the caller's and sends them upstream.
    param_headers: tuple[tuple[tuple[str, ...], str], ...] = ()


@dataclass(frozen=True)
class Catalog:
    index: int
    tools: tuple[types.Tool, ...]
    entries: Mapping[str, Entry]
    #: Changes exactly when the listed tools change (names, schemas, annotations).
    fingerprint: str

    @cached_property
    def by_name(self) -> Mapping[str, types.Tool]:
        return MappingProxyType({tool.name: tool for tool in self.tools})

    def input_schema(self, name: str) -> dict[str, Any] | None:
        """The input schema of the tool listed as ``name``."""
        tool = self.by_name.get(name)
        return None if tool is None else tool.input_schema


def public_name(service: str, tool: str) -> str:
    """``{service}__{tool}``, or a deterministic shortening of it with a hash suffix."""
    raw = f"{service}{_SEP}{tool}"
    if _VALID.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:_HASH_LEN]
    clean = _INVALID_CHARS.sub("_", raw)[: 64 - _HASH_LEN - 1]
    return f"{clean}_{digest}"


def build_catalog(table: RouteTable) -> Catalog:
    """Every routable service's tools and skills, and the mesh tools, in a stable order."""
    tools: list[types.Tool] = []
    entries: dict[str, Entry] = {}

    def add(name: str, entry: Entry, spec: Mapping[str, Any]) -> None:
        if name in entries:
            logger.debug("tool %s of %s hidden: the name is taken", entry.name, entry.service)
            return
        try:
            tool = types.Tool.model_validate({**spec, "name": name})
        except ValidationError:
            logger.warning("tool %s of %s skipped: not a valid MCP tool", entry.name, entry.service)
            return
        if entry.kind == "tool":
            hints = tool.annotations
            cacheable = bool(hints and hints.read_only_hint and hints.idempotent_hint)
            entry = replace(
                entry, cacheable=cacheable, param_headers=_header_map(tool.input_schema)
            )
        entries[name] = entry
        tools.append(tool)

    for spec in _MESH_TOOLS:
        add(public_name(MESH, spec["name"]), Entry("mesh", MESH, spec["name"]), spec)
    for service, routes in sorted(table.routable_services.items()):
        if not routes:
            continue
        _add_service(service, routes, add)
    dumped = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    fingerprint = hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()
    return Catalog(table.index, tuple(tools), MappingProxyType(entries), fingerprint)


def _add_service(service: str, routes: tuple[Route, ...], add: Any) -> None:
    agent = routes[0].kind is Kind.A2A_AGENT
    path = "mcp" if agent else None
    seen: set[str] = set()
    for route in routes:  # replicas normally share one list; the union is listed
        for spec in route.tools:
            tool = spec.get("name")
            if not isinstance(tool, str) or tool in seen:
                continue
            seen.add(tool)
            add(public_name(service, tool), Entry("tool", service, tool, path), spec)
    if not agent:
        return
    skills: dict[str, Mapping[str, Any]] = {}
    for route in routes:
        for skill in (route.card or {}).get("skills") or []:
            if isinstance(skill, Mapping) and isinstance(skill.get("id"), str):
                skills.setdefault(skill["id"], skill)
    for skill_id, skill in sorted(skills.items()):
        description = str(skill.get("description") or skill.get("name") or skill_id)
        spec = {
            "title": str(skill.get("name") or skill_id),
            "description": f"Ask the {service} agent ({skill_id} skill): {description}",
            "inputSchema": _SKILL_SCHEMA,
        }
        add(public_name(service, skill_id), Entry("skill", service, skill_id), spec)


def _header_map(schema: Mapping[str, Any]) -> tuple[tuple[tuple[str, ...], str], ...]:
    # A schema the SDK finds invalid binds nothing: conforming clients send no headers.
    if find_invalid_x_mcp_header(schema) is not None:
        return ()
    return tuple(x_mcp_header_map(schema).items())


class CatalogCache:
    """The catalog of the current route table, rebuilt only when the table moves."""

    def __init__(self) -> None:
        self._table: RouteTable | None = None
        self._catalog: Catalog | None = None

    def get(self, table: RouteTable) -> Catalog:
        if table is not self._table or self._catalog is None:
            self._catalog = build_catalog(table)
            self._table = table
        return self._catalog
