"""Delegation: send a message to a peer agent found by skill, get a :class:`Reply` back.

:class:`PeerClient` implements :class:`~agents.sdk.Delegator`. It finds peers in
the registry (passing instances only, never the asking agent itself) and sends
them an A2A 1.0 message with a2a-sdk's client: through the gateway at
``{gateway}/a2a/{agent}/`` when one is configured, else straight to an instance
from the registry. The message carries the skill (metadata ``skill``), the
caller's ``contextId`` and W3C trace context. Every failure is an
:class:`~agents.errors.AgentError`.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import Any, cast
from urllib.parse import quote, urlsplit

import anyio
import httpx
from a2a.client import (
    A2AClientError,
    A2AClientTimeoutError,
    ClientCallContext,
    ClientConfig,
    ClientFactory,
)
from a2a.types import (
    AgentCard,
    AgentInterface,
    Message,
    Part,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, VERSION_HEADER, TransportProtocol
from a2a.utils.errors import A2AError
from google.protobuf.json_format import ParseDict, ParseError
from opentelemetry import propagate, trace

from agents.errors import AgentError, NoPeer, PeerFailed, PeerTimeout, PeerUnavailable
from agents.runtime.wire import reply_from_parts
from agents.sdk import Citation, Reply
from registry.client import RegistryClient
from registry.errors import RegistryError
from registry.models import AgentQuery, Instance

__all__ = ["PeerClient"]

logger = logging.getLogger("meshgate.agents.delegation")
_tracer = trace.get_tracer("meshgate.agents")


class PeerClient:
    """Asks peer agents over A2A; see the module docstring for the routing rules.

    ``http`` is the caller's client (its pool and lifetime). ``timeout`` bounds
    one whole ask: discovery, card and message. Cards fetched from the gateway
    are kept ``card_ttl`` seconds (and dropped when a message fails).
    """

    def __init__(
        self,
        registry: RegistryClient,
        http: httpx.AsyncClient,
        *,
        gateway_url: str | None,
        self_name: str | None = None,
        timeout: float = 60.0,
        card_ttl: float = 30.0,
    ) -> None:
        self._registry = registry
        self._http = http
        self._gateway = gateway_url.rstrip("/") if gateway_url else None
        self._self = self_name
        self._timeout = timeout
        self._card_ttl = card_ttl
        self._cards: dict[str, tuple[float, AgentCard]] = {}
        self._turns: dict[tuple[str, str], itertools.count[int]] = {}
        # The factory stamps A2A-Version on the client it is given; this client
        # is the caller's, so undo that and send the header per call instead.
        had_version = VERSION_HEADER in http.headers
        self._factory = ClientFactory(ClientConfig(httpx_client=http, streaming=False))
        if not had_version:
            del http.headers[VERSION_HEADER]

    async def ask(
        self,
        text: str,
        *,
        skill: str | None = None,
        agent: str | None = None,
        context_id: str = "",
    ) -> Reply:
        """Send ``text`` to an agent with ``skill`` (or the agent named ``agent``); its reply."""
        if not skill and not agent:
            raise ValueError("ask() needs a skill or an agent")
        with _tracer.start_as_current_span("mesh.delegate") as span:
            span.set_attribute("mesh.skill", skill or "")
            try:
                with anyio.fail_after(self._timeout):
                    name, card = await self._choose(skill, agent)
                    span.set_attribute("mesh.peer", name)
                    return await self._send(name, card, text, skill, context_id)
            except TimeoutError:
                what = agent or f"an agent with skill {skill!r}"
                raise PeerTimeout(
                    f"{what} did not answer within {self._timeout:g}s", peer=agent or ""
                ) from None

    async def _choose(self, skill: str | None, agent: str | None) -> tuple[str, AgentCard]:
        if agent and agent == self._self:
            raise NoPeer(f"{agent} does not delegate to itself", peer=agent)
        if agent and not skill and self._gateway:
            return agent, await self._gateway_card(agent)  # the gateway knows its health
        instances = await self._candidates(skill, agent)
        if self._gateway:
            # Pick the agent here, not via /a2a/skills/{skill}/: that route
            # could hand the message back to the asking agent itself.
            names = sorted({i.service for i in instances})
            name = names[next(self._turn("agent", skill or "")) % len(names)]
            return name, await self._gateway_card(name)
        ordered = sorted(instances, key=lambda i: i.key)
        chosen = ordered[next(self._turn("instance", skill or agent or "")) % len(ordered)]
        return chosen.service, _direct_card(chosen)

    async def _candidates(self, skill: str | None, agent: str | None) -> list[Instance]:
        try:
            if skill:
                found = await self._registry.agents(AgentQuery(skill=skill, passing_only=True))
            else:
                assert agent is not None
                found = await self._registry.instances(agent, passing_only=True)
        except RegistryError as exc:
            raise NoPeer(f"cannot look up peers: {exc.detail}", peer=agent or "") from None
        instances = [
            i
            for i in found.value
            if i.service != self._self and i.card and (agent is None or i.service == agent)
        ]
        if not instances:
            what = f"agent {agent}" if agent else "agent"
            what += f" with skill {skill!r}" if skill else ""
            raise NoPeer(f"no passing {what}", peer=agent or "")
        return instances

    def _turn(self, kind: str, key: str) -> itertools.count[int]:
        return self._turns.setdefault((kind, key), itertools.count())

    async def _gateway_card(self, name: str) -> AgentCard:
        cached = self._cards.get(name)
        if cached and time.monotonic() - cached[0] < self._card_ttl:
            return cached[1]
        base = f"{self._gateway}/a2a/{quote(name, safe='')}/"
        try:
            where = f"{base}.well-known/agent-card.json"
            response = await self._http.get(where, headers=_trace_headers())
            response.raise_for_status()
            card = _parse_card(response.json(), name)
        except httpx.HTTPError as exc:
            raise _from_http(exc, name, via_gateway=True) from None
        except ValueError:
            raise PeerUnavailable(f"the gateway sent no JSON card for {name}", peer=name) from None
        # Whatever URL the card names, messages go to the gateway's route.
        _pin_jsonrpc(card, base)
        self._cards[name] = (time.monotonic(), card)
        return card

    async def _send(
        self, name: str, card: AgentCard, text: str, skill: str | None, context_id: str
    ) -> Reply:
        message = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), context_id=context_id)
        message.parts.append(Part(text=text))
        if skill:
            message.metadata.update({"skill": skill})
        call = ClientCallContext(
            timeout=self._timeout,
            service_parameters={VERSION_HEADER: PROTOCOL_VERSION_CURRENT, **_trace_headers()},
        )
        try:
            client = self._factory.create(card)
            last: Task | Message | None = None
            async for event in client.send_message(
                SendMessageRequest(message=message), context=call
            ):
                last = event.task if event.HasField("task") else event.message
        except AgentError:
            raise
        except Exception as exc:
            self._cards.pop(name, None)  # a stale card may be why; fetch it anew next time
            raise _mapped(exc, name, via_gateway=self._gateway is not None) from None
        if last is None:
            raise PeerUnavailable(f"{name} answered no task and no message", peer=name)
        return _reply_of(last, name)


def _reply_of(answer: Task | Message, name: str) -> Reply:
    """The reply in a completed task's artifacts (or a message), credited to ``name``."""
    if isinstance(answer, Task) and answer.status.state != TaskState.TASK_STATE_COMPLETED:
        # Failed, canceled, rejected; input or auth required, which one-shot
        # delegation cannot give; or still working, though a blocking send
        # answers only once the task has ended or stopped: each ends the exchange.
        said = " ".join(p.text for p in answer.status.message.parts if p.HasField("text"))
        label = TaskState.Name(answer.status.state).removeprefix("TASK_STATE_").lower()
        label = label.replace("_", "-")
        detail = f"{name}: task {label}" + (f": {said.strip()}" if said.strip() else "")
        raise PeerFailed(detail, peer=name, state=label)
    if isinstance(answer, Task):
        reply = reply_from_parts([p for artifact in answer.artifacts for p in artifact.parts])
    else:
        reply = reply_from_parts(answer.parts)
    return Reply(
        text=reply.text,
        data=reply.data,
        citations=tuple(Citation(c.source, c.title, c.agent or name) for c in reply.citations),
    )


def _mapped(exc: Exception, name: str, *, via_gateway: bool) -> AgentError:
    """The AgentError for an exception of the A2A client (never re-raised as is)."""
    if isinstance(exc, A2AClientTimeoutError):
        return PeerTimeout(f"{name} did not answer in time", peer=name)
    if isinstance(exc, A2AClientError):
        if isinstance(exc.__cause__, httpx.HTTPError):
            return _from_http(exc.__cause__, name, via_gateway=via_gateway)
        return PeerUnavailable(f"{name} broke the A2A protocol: {exc}", peer=name)
    if isinstance(exc, A2AError):  # a JSON-RPC error answer: the peer refused the request
        return PeerFailed(f"{name} refused the message: {exc.message}", peer=name, state="rejected")
    logger.warning("delegation to %s failed unexpectedly", name, exc_info=exc)
    return AgentError(f"delegation to {name} failed ({type(exc).__name__})", peer=name)


def _from_http(exc: httpx.HTTPError, name: str, *, via_gateway: bool) -> AgentError:
    if isinstance(exc, httpx.TimeoutException):
        return PeerTimeout(f"{name} did not answer in time", peer=name)
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 404 and via_gateway:
            return NoPeer(f"the gateway has no route to {name}", peer=name)
        return PeerUnavailable(f"{name} answered HTTP {status}", peer=name)
    return PeerUnavailable(f"cannot reach {name}: {str(exc) or type(exc).__name__}", peer=name)


def _direct_card(instance: Instance) -> AgentCard:
    card = _parse_card(instance.card or {}, instance.service)
    # The registry probed the instance URL, and the card's JSON-RPC URL only if
    # it is on the same origin: send where the registry looked (see registry.probes).
    url = next(
        (
            i.url
            for i in card.supported_interfaces
            if i.protocol_binding == TransportProtocol.JSONRPC
            and _origin(i.url) == _origin(instance.url)
        ),
        instance.url,
    )
    _pin_jsonrpc(card, url)
    return card


def _parse_card(data: Any, name: str) -> AgentCard:
    try:
        return cast(AgentCard, ParseDict(data, AgentCard(), ignore_unknown_fields=True))
    except (ParseError, TypeError, AttributeError):
        raise PeerUnavailable(f"the Agent Card of {name} cannot be read", peer=name) from None


def _pin_jsonrpc(card: AgentCard, url: str) -> None:
    """Make ``url`` the card's one JSON-RPC interface (the only one the client will use)."""
    del card.supported_interfaces[:]
    card.supported_interfaces.append(
        AgentInterface(url=url, protocol_binding=TransportProtocol.JSONRPC, protocol_version="1.0")
    )


def _trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # W3C traceparent/tracestate of the current span, if any
    return carrier


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()
