"""The gateway's aggregated MCP endpoint (``/mcp``); see :mod:`gateway.mcp.server`."""

from gateway.mcp.catalog import MESH, Catalog, CatalogCache, Entry, public_name
from gateway.mcp.policy import ToolPolicy, ToolRule, load_tool_policy
from gateway.mcp.server import McpMount, McpSettings, Sessions, mount_mcp

__all__ = [
    "MESH",
    "Catalog",
    "CatalogCache",
    "Entry",
    "McpMount",
    "McpSettings",
    "Sessions",
    "ToolPolicy",
    "ToolRule",
    "load_tool_policy",
    "mount_mcp",
    "public_name",
]
