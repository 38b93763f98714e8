# mypy: ignore-errors
"""A tool server on the mcp 1.x SDK, which speaks only the handshake versions.

Run by the interpreter of ``.tools/a2a-handler`` (a2a-handler pins ``mcp<2``), so
it imports nothing of ours: ``python legacy_server.py PORT``.
"""

import sys

from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("legacy", host="127.0.0.1", port=int(sys.argv[1]), log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def session(ctx: Context) -> str:
    """Which server session this call arrived on."""
    return str(id(ctx.session))


server.run(transport="streamable-http")
