"""A REST facade over A2A for callers that do not speak it.

``POST /v1/invoke/{agent}`` sends one message and answers the finished task
as plain JSON; ``POST /v1/stream/{agent}`` answers Server-Sent Events:
``progress`` while the agent works, then ``result`` (or ``error``).
``GET /v1/agents`` lists the agents the gateway can route to.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.a2a import A2AGateway
from gateway.asgi import upstream_headers
from gateway.cards import rewrite_card
from gateway.errors import BadRequest, GatewayError, NotFound, UpstreamUnavailable
from gateway.forwarding import Exchange, Target
from gateway.telemetry import record_status, route_span
from registry.models import Kind

__all__ = ["invoke", "list_agents", "stream", "task_result"]

_TERMINAL = frozenset(
    (
        "TASK_STATE_COMPLETED",
        "TASK_STATE_FAILED",
        "TASK_STATE_CANCELED",
        "TASK_STATE_REJECTED",
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_AUTH_REQUIRED",
    )
)


def _state(value: object) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``input-required``."""
    return str(value or "unknown").removeprefix("TASK_STATE_").lower().replace("_", "-")


def whole_numbers(value: Any) -> Any:
    """Protobuf's Struct carries every number as a double: 391 arrives as 391.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _gateway(request: Request) -> A2AGateway:
    gateway: A2AGateway = request.app.state.a2a
    return gateway


async def _message(request: Request, method: str) -> tuple[Target, bytes]:
    """Where the message goes (the task it continues, if any) and its JSON-RPC request."""
    agent = str(request.path_params["agent"])
    limit = _gateway(request).settings.max_body_bytes
    raw = await request.body()
    if len(raw) > limit:
        raise BadRequest(f"the body is over {limit} bytes")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the body is not JSON (or nests too deep)") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    # A field of the wrong type is refused, never ignored (the message would go without it).
    for key in ("text", "skill", "contextId", "taskId"):
        if key in body and not isinstance(body[key], str):
            raise BadRequest(f"`{key}` must be a string")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        raise BadRequest("`metadata` must be a JSON object")
    parts = body.get("parts")
    if "parts" not in body:
        text = body.get("text")
        if not text:
            raise BadRequest("give `text` (a string) or `parts` (A2A parts)")
        parts = [{"text": text}]
    elif not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise BadRequest("`parts` must be a non-empty list of A2A parts (objects)")
    message: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "role": "ROLE_USER",
        "parts": parts,
    }
    metadata: dict[str, Any] = dict(body.get("metadata") or {})
    if "skill" in body:
        metadata = {**metadata, "skill": body["skill"]}
    if metadata:
        message["metadata"] = metadata
    for key in ("contextId", "taskId"):
        if key in body:
            message[key] = body[key]
    rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}}
    target = Target(service=agent, task_id=message.get("taskId"))
    return target, json.dumps(rpc, separators=(",", ":")).encode()


def _headers(request: Request) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in upstream_headers(request.scope) if k != b"content-type"]
    return [*headers, (b"content-type", b"application/json"), (b"a2a-version", b"1.0")]


def task_result(task: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-JSON view of an A2A task: state, text, data and citations."""
    status = task.get("status") or {}
    state = _state(status.get("state"))
    texts: list[str] = []
    data: Any = None
    citations: list[Any] = []
    for artifact in task.get("artifacts") or []:
        for part in artifact.get("parts") or []:
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part.get("data"), dict):
                payload = part["data"]
                data = payload.get("data", data)
                citations.extend(payload.get("citations") or [])
    result: dict[str, Any] = {
        "taskId": task.get("id"),
        "contextId": task.get("contextId"),
        "state": state,
        "text": "\n".join(texts),
        "data": whole_numbers(data),
        "citations": whole_numbers(citations),
    }
    if state != "completed":
        result["error"] = _status_text(status)
    return result


def _status_text(status: Mapping[str, Any]) -> str:
    message = status.get("message") or {}
    return " ".join(p["text"] for p in message.get("parts") or [] if isinstance(p.get("text"), str))


async def invoke(request: Request) -> Response:
    target, body = await _message(request, "SendMessage")
    agent = str(target.service)
    gateway = _gateway(request)
    with route_span(request.scope["headers"], "rest_invoke", agent, "POST") as span:
        exchange = await gateway.forwarder.send(
            target, b"POST", None, _headers(request), body, idempotent=False
        )
        record_status(span, exchange.response.status)
    try:
        raw = await exchange.response.read(gateway.settings.max_response_bytes)
    finally:
        await exchange.finish()
    answer = _decode(raw)
    if "error" in answer:
        raise _refusal(agent, answer["error"])
    result = answer.get("result") or {}
    if "task" in result:
        _remember(gateway, exchange, result["task"].get("id"))
        return JSONResponse({"agent": agent, **task_result(result["task"])})
    message = result.get("message") or {}
    text = " ".join(p["text"] for p in message.get("parts") or [] if "text" in p)
    return JSONResponse({"agent": agent, "state": "completed", "text": text, "data": None})


async def stream(request: Request) -> Response:
    target, body = await _message(request, "SendStreamingMessage")
    agent = str(target.service)
    gateway = _gateway(request)
    with route_span(request.scope["headers"], "rest_stream", agent, "POST") as span:
        exchange = await gateway.forwarder.send(
            target, b"POST", None, _headers(request), body, idempotent=False
        )
        record_status(span, exchange.response.status)
    upstream: AsyncIterator[dict[str, Any]]
    content_type = next((v for k, v in exchange.response.headers if k == b"content-type"), b"")
    if content_type.startswith(b"text/event-stream"):
        upstream = _sse_events(exchange.response.stream())
    else:
        # One JSON-RPC answer instead of a stream: the agent refused the message.
        try:
            raw = await exchange.response.read(gateway.settings.max_response_bytes)
        finally:
            await exchange.finish()
        answer = _decode(raw)
        if "error" in answer:
            raise _refusal(agent, answer["error"])
        upstream = _one(answer)

    async def events() -> AsyncIterator[bytes]:
        facade = _StreamFacade(agent)
        try:
            async for event in upstream:
                known = facade.task.get("id")
                emitted = facade.feed(event)
                if not known:
                    _remember(gateway, exchange, facade.task.get("id"))
                for name, payload in emitted:
                    yield f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
        except GatewayError as error:
            yield f"event: error\ndata: {json.dumps({'error': error.detail})}\n\n".encode()
        finally:
            await exchange.finish()

    return StreamingResponse(events(), media_type="text/event-stream")


#: JSON-RPC errors by which an agent says the message itself is wrong (A2A's
#: parse, request, params and content-type errors): the caller's fault, not 502.
_INVALID = frozenset((-32700, -32600, -32602, -32005))
_TASK_NOT_FOUND = -32001


def _refusal(agent: str, error: object) -> GatewayError:
    """The gateway error for an agent's JSON-RPC error answer to a facade message."""
    error = error if isinstance(error, dict) else {}
    said = f"{agent} refused the message: {error.get('message')}"
    code = error.get("code")
    if code in _INVALID:
        return BadRequest(said)
    if code == _TASK_NOT_FOUND:
        return NotFound(said)
    return UpstreamUnavailable(said)


def _remember(gateway: A2AGateway, exchange: Exchange, task_id: object) -> None:
    """Follow-ups of a task created here (by either face) go to the instance that owns it."""
    if isinstance(task_id, str) and task_id:
        gateway.forwarder.router.affinity.remember(task_id, exchange.route.key)


async def _one(answer: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    yield answer


async def _sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer or b"\r\n\r\n" in buffer:
            cut = buffer.find(b"\n\n") if b"\n\n" in buffer else buffer.find(b"\r\n\r\n")
            block, buffer = buffer[:cut], buffer[cut:].lstrip(b"\r\n")
            data = b"\n".join(
                line[5:].strip() for line in block.splitlines() if line.startswith(b"data:")
            )
            if data:
                yield _decode(data)


class _StreamFacade:
    """Turns an A2A event stream into ``task``, ``progress``, ``artifact``, ``result``."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.task: dict[str, Any] = {}
        self.artifacts: list[Any] = []

    def feed(self, event: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if "error" in event:
            error = event["error"] if isinstance(event["error"], dict) else {}
            return [("error", {"agent": self.agent, "error": error.get("message")})]
        result = event.get("result") or {}
        if "task" in result:
            task = result["task"]
            self.task = {"id": task.get("id"), "contextId": task.get("contextId")}
            self.artifacts = list(task.get("artifacts") or self.artifacts)
            return self._status(task.get("status") or {}, first=True)
        if "statusUpdate" in result:
            update = result["statusUpdate"]
            self.task.setdefault("id", update.get("taskId"))
            self.task.setdefault("contextId", update.get("contextId"))
            return self._status(update.get("status") or {})
        if "artifactUpdate" in result:
            artifact = result["artifactUpdate"].get("artifact") or {}
            self.artifacts.append(artifact)
            view = task_result({"artifacts": [artifact], "status": {}})
            return [("artifact", {"agent": self.agent, "text": view["text"], "data": view["data"]})]
        if "message" in result:
            message = result["message"]
            text = " ".join(p["text"] for p in message.get("parts") or [] if "text" in p)
            return [("result", {"agent": self.agent, "state": "completed", "text": text})]
        return []

    def _status(
        self, status: Mapping[str, Any], *, first: bool = False
    ) -> list[tuple[str, dict[str, Any]]]:
        ids = {
            "agent": self.agent,
            "taskId": self.task.get("id"),
            "contextId": self.task.get("contextId"),
        }
        if str(status.get("state")) in _TERMINAL:
            task = {**self.task, "status": status, "artifacts": self.artifacts}
            return [("result", {"agent": self.agent, **task_result(task)})]
        events: list[tuple[str, dict[str, Any]]] = []
        if first:
            events.append(("task", {**ids, "state": _state(status.get("state"))}))
        text = _status_text(status)
        if text:
            events.append(("progress", {**ids, "state": _state(status.get("state")), "text": text}))
        return events


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UpstreamUnavailable("the agent answered something that is not JSON") from None
    if not isinstance(value, dict):
        raise UpstreamUnavailable("the agent answered something that is not a JSON object")
    return value


async def list_agents(request: Request) -> Response:
    gateway = _gateway(request)
    table = gateway.watcher.table
    public = gateway.public_url(request.scope)
    agents: list[dict[str, Any]] = []
    for service, routes in sorted(table.services.items()):
        if not routes or routes[0].kind is not Kind.A2A_AGENT:
            continue
        routable = table.routes(service)
        if not routable:
            continue
        card = table.card(service) or {}
        agents.append(
            {
                "name": service,
                "url": f"{public}/a2a/{service}/",
                "instances": len(routes),
                "routable": len(routable),
                "skills": sorted({s for r in routable for s in r.skills}),
                "card": rewrite_card(card, f"{public}/a2a/{service}"),
            }
        )
    if request.query_params.get("skill"):
        skill = request.query_params["skill"]
        agents = [a for a in agents if skill in a["skills"]]
    return JSONResponse(agents, headers={"x-meshgate-index": str(table.index)})
