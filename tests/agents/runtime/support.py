"""A small test agent and helpers for driving the runtime with real A2A clients."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_text_message
from a2a.types import Role, SendMessageRequest, StreamResponse, Task
from google.protobuf.struct_pb2 import Struct
from starlette.applications import Starlette

from agents.runtime import MEMORY_STORE, AgentConfig, build_agent_app
from agents.sdk import Agent, Citation, IncomingMessage, Reply, SkillContext, SkillError
from mcp_servers.hosting import HostingConfig
from registry.models import CheckSpec
from tests.support.live import free_port, serve

#: The URL in-process tests address the agent at (the card names it).
LOCAL_URL = "http://127.0.0.1:8765"
SECRET = "secret-internal-detail-42"


@dataclass
class Gate:
    """Lets a test hold the ``slow`` skill and know when it runs. Make it in a test."""

    started: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)


def make_agent(gate: Gate | None = None) -> Agent:
    """``tester``: echo, slow (progress, then waits on the gate), fail, crash, ask, word tool."""
    agent = Agent("tester", "An agent the runtime tests drive.", version="1.2.3", tags=["test"])

    @agent.skill(tags=["echo"], examples=["hello"])
    async def echo(message: IncomingMessage, ctx: SkillContext) -> Reply:
        """Answer with the text, its length and a citation."""
        return Reply(
            text=f"echo: {message.text}",
            data={"length": len(message.text), "task": ctx.task_id, "data": list(message.data)},
            citations=(Citation("test://echo", "Echo", agent=ctx.agent_name),),
        )

    @agent.skill()
    async def slow(message: IncomingMessage, ctx: SkillContext) -> str:
        """Report progress, then wait for the test to release it."""
        assert gate is not None, "the slow skill needs a Gate"
        await ctx.progress("started")
        gate.started.set()
        try:
            await gate.release.wait()
        except BaseException:
            gate.cancelled.set()
            raise
        await ctx.progress("finishing")
        return "slow done"

    @agent.skill()
    async def fail(message: IncomingMessage, ctx: SkillContext) -> str:
        """Refuse with a SkillError."""
        raise SkillError("cannot do that here")

    @agent.skill()
    async def crash(message: IncomingMessage, ctx: SkillContext) -> str:
        """Raise an unexpected error whose text must not leave the agent."""
        raise RuntimeError(SECRET)

    @agent.skill()
    async def ask(message: IncomingMessage, ctx: SkillContext) -> str:
        """Delegate to a peer and call a tool."""
        reply = await ctx.peers.ask(message.text, skill="echo", context_id=ctx.context_id)
        tool = await ctx.tools.call("calc", "evaluate", {"expression": message.text})
        return f"{reply.text} / {tool.text}"

    @agent.tool()
    def word_count(text: str) -> int:
        """Count the words of a text."""
        return len(text.split())

    return agent


def make_config(
    tmp_path: Path | None = None,
    *,
    url: str = LOCAL_URL,
    registry_url: str | None = None,
    grace: float = 10.0,
    instance: str = "tester-1",
    **kwargs: Any,
) -> AgentConfig:
    """A config for the test agent; SQLite under ``tmp_path``, in memory without one."""
    hosting = HostingConfig(
        service="tester",
        instance=instance,
        public_url=url,
        registry_url=registry_url,
        check=kwargs.pop("check", CheckSpec(ttl_seconds=5, interval_seconds=0)),
    )
    if tmp_path is not None:
        kwargs.setdefault("data_dir", tmp_path)
    else:
        kwargs.setdefault("task_store", MEMORY_STORE)
    return AgentConfig(hosting=hosting, grace_seconds=grace, **kwargs)


@contextlib.asynccontextmanager
async def in_process(app: Starlette, base_url: str = LOCAL_URL) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` with its lifespan running and an httpx client wired to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http


@contextlib.asynccontextmanager
async def hosted(app: Starlette) -> AsyncIterator[tuple[httpx.AsyncClient, anyio.Event]]:
    """Like :func:`in_process`, but the lifespan runs in a task of its own.

    Set the yielded event to start the shutdown while the client still works
    (the client is closed only after the lifespan has ended).
    """
    stop, started = anyio.Event(), anyio.Event()

    async def host() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=LOCAL_URL) as http,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(host)
        await started.wait()
        try:
            yield http, stop
        finally:
            stop.set()


@contextlib.asynccontextmanager
async def running_agent(
    agent: Agent,
    tmp_path: Path | None = None,
    *,
    http: httpx.AsyncClient | None = None,
    **config: Any,
) -> AsyncIterator[tuple[str, Starlette]]:
    """``agent`` on a real loopback port (its card names that port); yield URL and app.

    ``http`` is the client self-registration uses; ``config`` goes to :func:`make_config`.
    """
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):  # the port is free when picked, may be taken before the bind
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            app = build_agent_app(agent, make_config(tmp_path, url=url, **config), http=http)
            try:
                served = await stack.enter_async_context(serve(app, port=port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            else:
                break
        yield served, app


async def a2a_client(http: httpx.AsyncClient, url: str, *, streaming: bool = False) -> Client:
    """The a2a-sdk client for the agent at ``url``, built from its card."""
    config = ClientConfig(httpx_client=http, streaming=streaming)
    return await ClientFactory(config).create_from_url(url)


def request(
    text: str,
    *,
    skill: str | None = None,
    data: Mapping[str, Any] | None = None,
    return_immediately: bool = False,
) -> SendMessageRequest:
    """A SendMessage request with ``text``, naming ``skill`` in the message metadata."""
    message = new_text_message(text, role=Role.ROLE_USER)
    if skill is not None:
        metadata = Struct()
        metadata.update({"skill": skill})
        message.metadata.CopyFrom(metadata)
    if data is not None:
        part = message.parts.add()
        part.data.struct_value.update(dict(data))
    sent = SendMessageRequest(message=message)
    sent.configuration.return_immediately = return_immediately
    return sent


async def send(client: Client, sent: SendMessageRequest) -> list[StreamResponse]:
    """Every response of one ``send_message`` call."""
    return [event async for event in client.send_message(sent)]


async def final_task(client: Client, sent: SendMessageRequest) -> Task:
    """Send (non-streaming) and return the task the agent answered."""
    events = await send(client, sent)
    assert len(events) == 1, events
    assert events[0].HasField("task"), events
    return events[0].task


def status_text(task: Task) -> str:
    return "\n".join(part.text for part in task.status.message.parts if part.HasField("text"))


async def rpc(
    http: httpx.AsyncClient,
    body: Any,
    *,
    version: str | None = "1.0",
    raw: bytes | None = None,
) -> httpx.Response:
    """POST a JSON-RPC body (or raw bytes) to the agent's root."""
    headers = {"Content-Type": "application/json"}
    if version is not None:
        headers["A2A-Version"] = version
    if raw is not None:
        return await http.post("/", content=raw, headers=headers)
    return await http.post("/", json=body, headers=headers)
