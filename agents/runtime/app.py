"""Build the Starlette app of an agent: A2A 1.0 server, MCP face, ops routes, registration."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

import anyio
import httpx
from a2a.server.agent_execution import SimpleRequestContextBuilder
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.types import Message, SendMessageRequest, Task
from a2a.utils.errors import UnsupportedOperationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from agents.runtime.card import build_agent_card, card_to_json
from agents.runtime.config import AgentConfig
from agents.runtime.dedup import RecentMessages
from agents.runtime.executor import CANCEL_WAIT_SECONDS, SkillExecutor
from agents.runtime.metrics import SkillMetrics
from agents.runtime.store import TaskStorage
from agents.runtime.tracking import FreshIds, OpenTasks, TrackingTaskStore
from agents.sdk import Agent, Delegator, LanguageModel, ToolCaller
from mcp_servers.hosting import HttpMetrics, MetricsMiddleware, ops_routes, registered
from mcp_servers.http import McpHttpSettings, describe_tools, mcp_app
from registry.models import Health, Kind, Registration
from registry.selfreg import SelfRegistration

__all__ = ["build_agent_app"]

logger = logging.getLogger("meshgate.agent")


class _Handler(DefaultRequestHandler):
    """The SDK's handler, refusing new messages once the agent is shutting down.

    A new-task message whose ``messageId`` was seen recently (a client's retry)
    gets the task its first send made, without running the skill again.
    """

    accepting = True
    recent: RecentMessages

    def _check_accepting(self) -> None:
        if not self.accepting:
            raise UnsupportedOperationError(
                message="the agent is shutting down; send the message to another instance"
            )

    async def _repeated(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> tuple[Task | None, str]:
        """The first task of a repeated message, or None and the key this send
        must :meth:`RecentMessages.settle` ("" when it starts no task)."""
        message_id = params.message.message_id
        if not message_id or params.message.task_id:
            return None, ""
        pending = self.recent.claim(message_id)
        while pending is not None:
            task_id = await self.recent.first_task(pending)
            task = await self.task_store.get(task_id, context) if task_id else None
            if isinstance(task, Task):  # (the store here is a plain one, never versioned)
                return task, ""
            pending = self.recent.claim(message_id)  # the first made no task: run anew
        return None, message_id

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Message | Task:
        self._check_accepting()
        first, key = await self._repeated(params, context)
        if first is not None:
            return first
        task_id: str | None = None
        try:
            result: Message | Task = await super().on_message_send(params, context)
            task_id = result.id if isinstance(result, Task) else None
        finally:
            if key:  # the SDK writes the new task's id into the message: keep the key
                self.recent.settle(key, task_id)
        return result

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        self._check_accepting()
        first, key = await self._repeated(params, context)
        if first is not None:
            yield first
            return
        task_id: str | None = None
        try:
            async for event in super().on_message_send_stream(params, context):
                if task_id is None:
                    task_id = _task_of(event)
                yield event
        finally:
            if key:
                self.recent.settle(key, task_id)


def _task_of(event: Event) -> str | None:
    if isinstance(event, Task):
        return event.id or None
    return getattr(event, "task_id", None) or None


def _admitting_public_host(mcp: McpHttpSettings, public_url: str | None) -> McpHttpSettings:
    # The name others reach the agent by is a Host header /mcp must accept.
    host = urlsplit(public_url).netloc.rpartition("@")[2] if public_url else ""
    if not host or host in mcp.allowed_hosts:
        return mcp
    return McpHttpSettings((*mcp.allowed_hosts, host), mcp.allowed_origins, mcp.path)


def build_agent_app(
    agent: Agent,
    config: AgentConfig,
    *,
    http: httpx.AsyncClient | None = None,
    tools: ToolCaller | None = None,
    peers: Delegator | None = None,
    llm: LanguageModel | None = None,
) -> Starlette:
    """The app serving ``agent`` as ``config`` says; its lifespan runs everything.

    Routes: the card at ``/.well-known/agent-card.json``, A2A JSON-RPC at ``/``,
    the HTTP+JSON binding (``/message:send``, ``/tasks/{id}``, ...), the
    agent's tools at ``/mcp``, ``/healthz``, ``/readyz`` and ``/metrics``.
    ``tools`` and ``peers`` are what skills get as ``ctx.tools`` and
    ``ctx.peers`` (absent: calls fail the skill with "no registry
    configured"); ``llm`` is ``ctx.llm`` (absent: ``None``, skills take their
    deterministic path); ``http`` is the client self-registration uses (the caller
    owns it). The lifespan can run once: build a new app to serve again.
    """
    hosting = config.hosting
    card = build_agent_card(agent, hosting.base_url)
    metrics = HttpMetrics()
    skill_metrics = SkillMetrics(metrics.registry, agent.name)
    open_tasks = OpenTasks()
    storage = TaskStorage(config)
    executor = SkillExecutor(agent, skill_metrics, open_tasks, tools=tools, peers=peers, llm=llm)
    fresh = FreshIds()
    handler = _Handler(
        agent_executor=executor,
        task_store=TrackingTaskStore(storage.store, open_tasks, fresh),
        agent_card=card,
        request_context_builder=SimpleRequestContextBuilder(task_id_generator=fresh),
    )
    handler.recent = RecentMessages()
    mcp_settings = _admitting_public_host(config.mcp, hosting.public_url)
    mcp_starlette, run_sessions = mcp_app(agent.mcp, mcp_settings)
    ready = False

    async def drain(registration: SelfRegistration | None) -> None:
        handler.accepting = False
        if registration is not None:
            registration.set_status(Health.CRITICAL, "shutting down")
        if len(open_tasks):
            logger.info("waiting up to %.1fs for %d task(s)", config.grace_seconds, len(open_tasks))
        with anyio.move_on_after(config.grace_seconds):
            await open_tasks.wait_idle()
        if cancelled := executor.cancel_all():
            logger.warning("cancelled %d task(s) still running after the grace period", cancelled)
        with anyio.move_on_after(CANCEL_WAIT_SECONDS):
            await open_tasks.wait_idle()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal ready
        async with AsyncExitStack() as stack:
            stack.push_async_callback(storage.close)
            await storage.open()
            if interrupted := await storage.fail_interrupted():
                logger.warning("failed %d task(s) the last process left running", interrupted)
            handler.recent.seed(await storage.recent_messages(handler.recent.limit))
            await stack.enter_async_context(run_sessions())
            registration = Registration(
                kind=Kind.A2A_AGENT,
                url=hosting.base_url,
                card=card_to_json(card),
                tools=await describe_tools(agent.mcp),
                tags=list(agent.tags),
                meta={"version": agent.version[:512], "mcp_path": mcp_settings.path},
                check=hosting.check,
            )
            registering = await stack.enter_async_context(
                registered(hosting, registration, http=http)
            )
            stack.push_async_callback(handler.aclose)
            app.state.registration = registering
            logger.info(
                "agent %s serving at %s (tasks: %s)",
                agent.name,
                hosting.base_url,
                storage.description,
            )
            ready = True
            try:
                yield
            finally:
                ready = False
                await drain(registering)

    grace = config.grace_seconds
    routes: list[BaseRoute] = [
        *create_agent_card_routes(card),
        *ops_routes(lambda: ready, metrics.registry),
        *mcp_starlette.routes,
        *create_jsonrpc_routes(handler, rpc_url="/", shutdown_grace_period=grace),
        # Without the binding's "/{tenant}/..." mount: the card names no tenant,
        # and the mount would catch (and redirect) every unknown path.
        *(
            route
            for route in create_rest_routes(handler, shutdown_grace_period=grace)
            if not isinstance(route, Mount)
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        max_body_size=config.max_body_bytes,
    )
    app.state.registration = None
    app.state.metrics = metrics
    app.state.card = card
    app.state.executor = executor
    app.state.recent_messages = handler.recent
    return app
