"""Make an ``MCPServer`` without letting it configure the process's logging.

``MCPServer()`` calls ``logging.basicConfig`` (a rich handler on the root
logger) unless logging is configured already; a library must not do that, so
the root logger's handlers and level are put back as they were.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.mcpserver import MCPServer

__all__ = ["quiet_server"]


def quiet_server(name: str, **kwargs: Any) -> MCPServer:
    """``MCPServer(name, **kwargs)`` with the root logger left untouched."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return MCPServer(name, **kwargs)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
