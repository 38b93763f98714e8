"""Real protocol peers for tests: an a2a-sdk agent and an mcp ``MCPServer``, not mocks.

Both are Starlette apps meant for :func:`tests.support.live.serve`. An A2A card must
name its own URL, so the agent needs its port before it starts: use
:func:`running_a2a_agent`, or pick ``free_port()`` and pass ``port=`` to ``serve``.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator, Sequence
from typing import Any

from a2a.helpers.proto_helpers import new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCard, TaskState
from google.protobuf.json_format import ParseDict
from starlette.applications import Starlette

from mcp_servers.quiet import quiet_server
from tests.support.live import free_port, serve

__all__ = [
    "EchoExecutor",
    "a2a_agent_app",
    "agent_card",
    "mcp_server_app",
    "running_a2a_agent",
    "running_mcp_server",
]


def agent_card(name: str, url: str, skills: Sequence[str] = ("echo",)) -> dict[str, Any]:
    """A valid A2A 1.0 Agent Card as JSON (camelCase), JSON-RPC at ``url``."""
    return {
        "name": name,
        "description": f"{name}: a test agent that echoes text back",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {"id": s, "name": s.title(), "description": f"The {s} skill.", "tags": [s]}
            for s in skills
        ],
    }


class EchoExecutor(AgentExecutor):
    """Answers every message with a completed task whose artifact is the same text."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id
        assert context.context_id
        assert context.message
        task = context.current_task or new_task(
            context.task_id,
            context.context_id,
            TaskState.TASK_STATE_SUBMITTED,
            history=[context.message],
        )
        await event_queue.enqueue_event(task)  # a Task first, then its updates
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        await updater.add_artifact([new_text_part(context.get_user_input())], name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id
        assert context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def a2a_agent_app(name: str = "echo", *, base_url: str) -> Starlette:
    """A real a2a-sdk 1.3 agent: card at the well-known path, JSON-RPC at ``/``."""
    card = ParseDict(agent_card(name, base_url.rstrip("/") + "/"), AgentCard())
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    return Starlette(routes=routes)


def mcp_server_app(name: str = "tools") -> Starlette:
    """A real mcp 2.3 ``MCPServer`` with ``add`` and ``echo``, streamable HTTP at ``/mcp``.

    The returned app's lifespan runs the session manager, so serve it with lifespan on.
    It answers both protocol eras on one endpoint (chosen by ``MCP-Protocol-Version``).
    """
    server = quiet_server(name, log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    return server.streamable_http_app()


@contextlib.asynccontextmanager
async def running_a2a_agent(name: str = "echo") -> AsyncIterator[str]:
    """Serve :func:`a2a_agent_app` on a fresh loopback port; yield its base URL."""
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):  # the port is free when picked but may be taken before the bind
            port = free_port()
            app = a2a_agent_app(name, base_url=f"http://127.0.0.1:{port}")
            try:
                url = await stack.enter_async_context(serve(app, port=port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            else:
                break
        yield url


@contextlib.asynccontextmanager
async def running_mcp_server(name: str = "tools") -> AsyncIterator[str]:
    """Serve :func:`mcp_server_app`; yield its MCP endpoint URL (``.../mcp``)."""
    async with serve(mcp_server_app(name)) as url:
        yield url + "/mcp"
