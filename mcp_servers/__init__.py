"""mcp_servers: the MCP tool-server runtime and the reference tool servers.

:mod:`mcp_servers.http` and :mod:`mcp_servers.hosting` are shared with the
agent runtime; :mod:`mcp_servers.runtime` hosts one ``MCPServer`` as a Meshgate
process; ``knowledge`` and ``calc`` are the reference tool servers.
"""

__all__: list[str] = []
