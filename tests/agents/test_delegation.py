"""PeerClient against a real registry and real A2A peers on loopback sockets."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from a2a.helpers.proto_helpers import new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import TaskState
from a2a.utils.errors import InvalidParamsError
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from agents.delegation import PeerClient
from agents.errors import ERROR_TABLE, AgentError, NoPeer, PeerFailed, PeerTimeout, PeerUnavailable
from agents.sdk import Agent, Citation, IncomingMessage, Reply, SkillContext, SkillError
from registry.client import RegistryClient
from tests.agents.mesh import (
    TRACE_ID,
    Recorder,
    a2a_app,
    a2a_registration,
    gateway_app,
    register,
    registry_client,
    remote_parent,
    running_agent,
)
from tests.support.live import free_port, serve
from tests.support.peers import running_a2a_agent

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def peer_http(
    requests: list[httpx.Request] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The client delegation uses; ``requests`` collects every request it sends."""

    async def record(request: httpx.Request) -> None:
        if requests is not None:
            requests.append(request)

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as http:
        yield http


def echoer() -> Agent:
    agent = Agent("echoer", "Echoes with data and a citation.")

    @agent.skill(tags=["echo"])
    async def echo(message: IncomingMessage, ctx: SkillContext) -> Reply:
        return Reply(text=message.text, data={"n": 3}, citations=(Citation("doc:1", "Doc"),))

    return agent


def recorder_agent(seen: list[IncomingMessage]) -> Agent:
    agent = Agent("recorder", "Remembers what it was sent.")

    @agent.skill(tags=["record"])
    async def record(message: IncomingMessage, ctx: SkillContext) -> str:
        seen.append(message)
        return "noted"

    @agent.skill(tags=["other"])
    async def other(message: IncomingMessage, ctx: SkillContext) -> str:
        return "the other skill"

    return agent


async def test_finds_a_peer_by_skill_and_never_itself() -> None:
    async with registry_client() as registry, running_a2a_agent("echo") as echo_url:
        await register(registry, "echo", "echo-1", a2a_registration("echo", echo_url, ("echo",)))
        # The asking agent has the skill too, at an address where nothing listens.
        dead = f"http://127.0.0.1:{free_port()}"
        await register(registry, "planner", "p-1", a2a_registration("planner", dead, ("echo",)))
        async with peer_http() as http:
            peers = PeerClient(registry, http, gateway_url=None, self_name="planner")
            for _ in range(3):
                reply = await peers.ask("hello", skill="echo")
                assert reply.text == "hello"
            assert (await peers.ask("by name", agent="echo")).text == "by name"
            with pytest.raises(NoPeer, match="itself"):
                await peers.ask("loop", agent="planner")


async def test_round_robin_over_passing_instances() -> None:
    requests: list[httpx.Request] = []
    async with (
        registry_client() as registry,
        running_a2a_agent("echo") as first,
        running_a2a_agent("echo") as second,
    ):
        await register(registry, "echo", "echo-1", a2a_registration("echo", first, ("echo",)))
        await register(registry, "echo", "echo-2", a2a_registration("echo", second, ("echo",)))
        async with peer_http(requests) as http:
            peers = PeerClient(registry, http, gateway_url=None)
            for _ in range(4):
                await peers.ask("hi", skill="echo")
    ports = Counter(r.url.port for r in requests)
    assert sorted(ports.values()) == [2, 2]


async def test_no_passing_peer_is_no_peer() -> None:
    async with registry_client() as registry, running_a2a_agent("echo") as echo_url:
        # Registered but never heartbeated: critical, so not a candidate.
        registration = a2a_registration("echo", echo_url, ("echo",))
        await register(registry, "echo", "echo-1", registration, passing=False)
        async with peer_http() as http:
            peers = PeerClient(registry, http, gateway_url=None)
            with pytest.raises(NoPeer, match="skill 'echo'") as caught:
                await peers.ask("hi", skill="echo")
            assert caught.value.status == 503
            with pytest.raises(NoPeer):
                await peers.ask("hi", skill="nobody-has-this")
            with pytest.raises(NoPeer, match="agent echo"):
                await peers.ask("hi", agent="echo")
            with pytest.raises(ValueError, match="skill or an agent"):
                await peers.ask("hi")


async def test_registry_down_is_no_peer() -> None:
    async with peer_http() as http:
        registry = RegistryClient(f"http://127.0.0.1:{free_port()}", http=http)
        with pytest.raises(NoPeer, match="cannot look up peers"):
            await PeerClient(registry, http, gateway_url=None).ask("hi", skill="echo")


async def test_dead_instance_is_peer_unavailable() -> None:
    async with registry_client() as registry, peer_http() as http:
        dead = f"http://127.0.0.1:{free_port()}"
        await register(registry, "echo", "echo-1", a2a_registration("echo", dead, ("echo",)))
        with pytest.raises(PeerUnavailable, match="cannot reach echo") as caught:
            await PeerClient(registry, http, gateway_url=None).ask("hi", skill="echo")
        assert caught.value.peer == "echo"
        assert caught.value.__cause__ is None  # no raw httpx/a2a exception rides along


async def test_failed_task_is_peer_failed() -> None:
    agent = Agent("refuser", "Refuses everything.")

    @agent.skill(tags=["refuse"])
    async def refuse(message: IncomingMessage, ctx: SkillContext) -> Reply:
        raise SkillError("cannot do that")

    async with registry_client() as registry, running_agent(agent) as url, peer_http() as http:
        await register(registry, "refuser", "r-1", a2a_registration("refuser", url, ("refuse",)))
        with pytest.raises(PeerFailed, match="task failed: cannot do that") as caught:
            await PeerClient(registry, http, gateway_url=None).ask("x", skill="refuse")
        assert caught.value.state == "failed"
        assert caught.value.jsonrpc_code == -32051


async def test_reply_carries_data_and_credited_citations() -> None:
    async with (
        registry_client() as registry,
        running_agent(echoer()) as url,
        peer_http() as http,
    ):
        # The card as the runtime serves it: the registry record holds the real one.
        card = (await http.get(url + "/.well-known/agent-card.json")).json()
        await register(registry, "echoer", "e-1", a2a_registration("echoer", url, (), card=card))
        reply = await PeerClient(registry, http, gateway_url=None).ask("words", skill="echo")
    assert reply.text == "words"
    assert reply.data == {"n": 3}
    assert isinstance(reply.data["n"], int)  # not 3.0, as protobuf's Value would have it
    assert reply.citations == (Citation("doc:1", "Doc", "echoer"),)


async def test_skill_context_and_trace_context_reach_the_peer() -> None:
    seen: list[IncomingMessage] = []
    requests: list[httpx.Request] = []
    agent = recorder_agent(seen)
    async with (
        registry_client() as registry,
        running_agent(agent) as url,
        peer_http(requests) as http,
    ):
        card = (await http.get(url + "/.well-known/agent-card.json")).json()
        await register(
            registry, "recorder", "r-1", a2a_registration("recorder", url, (), card=card)
        )
        peers = PeerClient(registry, http, gateway_url=None)
        with remote_parent():
            reply = await peers.ask("remember", skill="record", context_id="ctx-42")
        assert reply.text == "noted"
        assert "a2a-version" not in http.headers  # the caller's client is left as it was
    [message] = seen
    assert message.context_id == "ctx-42"
    assert message.metadata["skill"] == "record"
    sent = requests[-1]
    assert sent.headers["a2a-version"] == "1.0"
    assert sent.headers["traceparent"].split("-")[1] == TRACE_ID


async def test_slow_peer_times_out() -> None:
    release = anyio.Event()
    agent = Agent("sloth", "Answers when released.")

    @agent.skill(tags=["slow"])
    async def slow(message: IncomingMessage, ctx: SkillContext) -> str:
        await release.wait()
        return "finally"

    async with registry_client() as registry, running_agent(agent) as url, peer_http() as http:
        await register(registry, "sloth", "s-1", a2a_registration("sloth", url, ("slow",)))
        peers = PeerClient(registry, http, gateway_url=None, timeout=0.3)
        try:
            with pytest.raises(PeerTimeout) as caught:
                await peers.ask("hurry", skill="slow")
            assert caught.value.status == 504
        finally:
            release.set()


async def test_through_the_gateway_when_one_is_configured() -> None:
    recorder = Recorder()
    requests: list[httpx.Request] = []
    async with (
        registry_client() as registry,
        running_a2a_agent("echo") as echo_url,
        serve(gateway_app({"echo": echo_url}, {}, recorder)) as gateway,
        peer_http(requests) as http,
    ):
        await register(registry, "echo", "echo-1", a2a_registration("echo", echo_url, ("echo",)))
        peers = PeerClient(registry, http, gateway_url=gateway + "/", self_name="planner")
        with remote_parent():
            assert (await peers.ask("one", skill="echo", context_id="c-1")).text == "one"
            assert (await peers.ask("two", agent="echo")).text == "two"
        with pytest.raises(NoPeer, match="ghost"):
            await peers.ask("boo", agent="ghost")
    # The card once (then cached), each message to the gateway's route; none direct.
    assert recorder.paths == [
        "/a2a/echo/.well-known/agent-card.json",
        "/a2a/echo/",
        "/a2a/echo/",
        "/a2a/ghost/.well-known/agent-card.json",
    ]
    assert {r.url.port for r in requests if r.url.host == "127.0.0.1"} == {httpx.URL(gateway).port}
    first = recorder.bodies[1]["params"]["message"]
    assert first["contextId"] == "c-1"
    assert first["metadata"] == {"skill": "echo"}
    assert recorder.headers[1]["traceparent"].split("-")[1] == TRACE_ID


async def test_gateway_errors_are_peer_errors() -> None:
    recorder = Recorder()
    dead = f"http://127.0.0.1:{free_port()}"
    async with serve(gateway_app({"gone": dead}, {}, recorder)) as gateway, peer_http() as http:
        # Asked by name with a gateway: the registry is not consulted.
        registry = RegistryClient(f"http://127.0.0.1:{free_port()}", http=http)
        peers = PeerClient(registry, http, gateway_url=gateway)
        with pytest.raises(PeerUnavailable, match="HTTP 500"):
            await peers.ask("hi", agent="gone")


class OddExecutor(AgentExecutor):
    """Answers as the runtime never does: a bare message, a question back, a refusal..."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id
        assert context.context_id
        assert context.message
        if self.mode == "message":
            answer = new_text_message("a plain message", context_id=context.context_id)
            await event_queue.enqueue_event(answer)
            return
        if self.mode == "refuse":
            raise InvalidParamsError("that is not a question")
        task = new_task(context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        if self.mode == "input":
            await updater.requires_input(updater.new_agent_message([new_text_part("which one?")]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


@contextlib.asynccontextmanager
async def odd_peer(registry: RegistryClient, mode: str) -> AsyncIterator[None]:
    port = free_port()
    app = a2a_app(OddExecutor(mode), "odd", f"http://127.0.0.1:{port}", ("odd",))
    async with serve(app, port=port) as url:
        await register(registry, "odd", "odd-1", a2a_registration("odd", url, ("odd",)))
        yield


async def test_a_bare_message_is_a_reply() -> None:
    async with registry_client() as registry, odd_peer(registry, "message"), peer_http() as http:
        reply = await PeerClient(registry, http, gateway_url=None).ask("hi", skill="odd")
    assert reply == Reply("a plain message")


@pytest.mark.parametrize(
    ("mode", "state", "match"),
    [
        ("input", "input-required", "odd: task input-required: which one?"),
        ("unfinished", "working", "odd: task working"),
        ("refuse", "rejected", "odd refused the message: that is not a question"),
    ],
)
async def test_answers_that_end_the_exchange_are_peer_failed(
    mode: str, state: str, match: str
) -> None:
    async with registry_client() as registry, odd_peer(registry, mode), peer_http() as http:
        with pytest.raises(PeerFailed, match=match) as caught:
            await PeerClient(registry, http, gateway_url=None).ask("hi", skill="odd")
    assert caught.value.state == state


def card_server(body: bytes, delay: anyio.Event | None = None) -> Starlette:
    """Serves ``body`` as every agent's card (waiting for ``delay`` first, if given)."""

    async def card(request: object) -> Response:
        if delay is not None:
            await delay.wait()
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/a2a/{agent}/.well-known/agent-card.json", card)])


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"<html>", "no JSON card for odd"), (b'{"name": 5}', "Agent Card of odd cannot be read")],
)
async def test_unreadable_gateway_card_is_peer_unavailable(body: bytes, match: str) -> None:
    async with serve(card_server(body)) as gateway, peer_http() as http:
        unused = RegistryClient(f"http://127.0.0.1:{free_port()}", http=http)
        with pytest.raises(PeerUnavailable, match=match):
            await PeerClient(unused, http, gateway_url=gateway).ask("hi", agent="odd")


async def test_card_read_timeout_is_peer_timeout() -> None:
    release = anyio.Event()
    async with (
        serve(card_server(b"{}", release)) as gateway,
        httpx.AsyncClient(timeout=0.2) as http,  # shorter than the ask's own deadline
    ):
        unused = RegistryClient(f"http://127.0.0.1:{free_port()}", http=http)
        try:
            with pytest.raises(PeerTimeout, match="odd did not answer in time"):
                await PeerClient(unused, http, gateway_url=gateway).ask("hi", agent="odd")
        finally:
            release.set()


def test_error_table_and_problem_details() -> None:
    error = NoPeer("no passing agent with skill 'x'", peer="x")
    assert error.problem() == {
        "type": "urn:meshgate:error:no-peer",
        "title": "No healthy peer",
        "status": 503,
        "detail": "no passing agent with skill 'x'",
    }
    assert isinstance(error, SkillError)  # a skill that lets it through fails cleanly
    assert AgentError("x").status == 500
    codes = [code for _, code in ERROR_TABLE.values()]
    assert len(codes) == len(set(codes))  # one JSON-RPC code per error
