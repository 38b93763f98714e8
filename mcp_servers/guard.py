"""Protocol-correct errors for ``tools/call`` on an ``MCPServer``.

What ``MCPServer`` (mcp 2.3) does by itself, and what this middleware changes:

* an unknown tool comes back as an ``isError`` result ("Unknown tool: x"); the
  MCP spec lists unknown tools among *protocol* errors, so it becomes JSON-RPC
  ``-32602`` (invalid params);
* arguments that break the input schema come back as an ``isError`` result
  (right, so a model can correct itself) whose text is pydantic's report: an
  internal model name, an echo of the rejected value and a link to pydantic's
  docs. The text is replaced by a short account per field, from the tool's
  published ``inputSchema``;
* malformed requests, parse errors and oversized bodies are already refused
  by the SDK (``-32602``/``-32700``, HTTP 413); a crash inside a tool is
  already reported as "Error executing tool x" without its details.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# No stubs in the dev set: types-jsonschema is not a dependency.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

__all__ = ["ToolCallGuard", "install_guard"]

_MAX_REPORTED = 5
_MAX_MESSAGE = 200


def _describe(error: ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "arguments"
    limit = error.validator_value
    message = {
        "type": f"must be of type {limit}",
        "maxLength": f"must be at most {limit} characters",
        "minLength": f"must be at least {limit} characters",
        "maxItems": f"must have at most {limit} items",
        "minItems": f"must have at least {limit} items",
        "maximum": f"must be <= {limit}",
        "minimum": f"must be >= {limit}",
        "exclusiveMaximum": f"must be < {limit}",
        "exclusiveMinimum": f"must be > {limit}",
        "enum": f"must be one of {limit}",
        "additionalProperties": "unexpected argument",
    }.get(str(error.validator), error.message)
    return f"{where}: {message}"[:_MAX_MESSAGE]


def schema_errors(schema: Mapping[str, Any], arguments: object) -> list[str]:
    """Short accounts of how ``arguments`` break ``schema`` (empty if they do not)."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in errors[:_MAX_REPORTED]]


class ToolCallGuard:
    """Server middleware: unknown tools → ``-32602``; schema breaks → a clear ``isError``."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method != "tools/call" or not isinstance(ctx.params, Mapping):
            return await call_next(ctx)
        name = ctx.params.get("name")
        schemas = {t.name: t.input_schema for t in await self.server.list_tools()}
        if isinstance(name, str) and name not in schemas:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name[:128]}")
        result = await call_next(ctx)
        # Only a failed call is re-examined: the success path costs nothing more.
        if isinstance(result, dict) and result.get("isError") and isinstance(name, str):
            if "validation error" not in str(result.get("content")):
                return result  # the tool's own error: its words stand
            arguments = ctx.params.get("arguments") or {}
            if problems := schema_errors(schemas[name], arguments):
                text = f"Invalid arguments for tool {name!r}: " + "; ".join(problems)
                result = {**result, "content": [{"type": "text", "text": text}]}
        return result


def install_guard(server: MCPServer[Any]) -> None:
    """Add :class:`ToolCallGuard` to ``server`` once (a second call does nothing)."""
    if not any(isinstance(m, ToolCallGuard) for m in server.middleware):
        server.middleware.append(ToolCallGuard(server))
