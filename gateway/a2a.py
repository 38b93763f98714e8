"""A2A through the gateway: ``/a2a/{agent}/`` and ``/a2a/skills/{skill}/``.

JSON-RPC is parsed only for what routing needs (the method, the task it
concerns) and forwarded as the caller's bytes; SSE streams pass through chunk
by chunk, and a caller that goes away closes the upstream stream. Cards are
served from the route table with their URLs on the gateway. The HTTP+JSON
binding (``message:send``, ``tasks/{id}`` ...) is routed the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from starlette.types import Receive, Scope, Send

from gateway.asgi import body_headers, header, read_body, send_body, upstream_headers
from gateway.cards import CardCache
from gateway.errors import (
    BadRequest,
    GatewayError,
    NotFound,
    ParseError,
    PayloadTooLarge,
    jsonrpc_response,
    problem_response,
)
from gateway.forwarding import Exchange, Forwarder, Target
from gateway.metrics import CounterValue, GatewayMetrics, GaugeValue, HistogramValue
from gateway.proxy import UpstreamError
from gateway.security.headers import merge_headers
from gateway.telemetry import record_status, route_span
from gateway.watcher import RouteWatcher

__all__ = ["A2AGateway", "A2ASettings"]

CARD_PATH = ".well-known/agent-card.json"
#: Methods that may run twice without harm: retried on another instance.
IDEMPOTENT = frozenset(
    (
        "GetTask",
        "ListTasks",
        "GetExtendedAgentCard",
        "GetTaskPushNotificationConfig",
        "ListTaskPushNotificationConfigs",
    )
)
_SENDS = frozenset(("SendMessage", "SendStreamingMessage"))
#: The same in the HTTP+JSON binding (the body is JSON-RPC's ``params``).
_BINDING_SENDS = frozenset(("message:send", "message:stream"))
_JSON = (b"content-type", b"application/json")
Headers = Sequence[tuple[bytes, bytes]]


class Whole(Protocol):
    """Writes one complete answer at once (the server's lean path)."""

    async def whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """``headers`` carry the Content-Length of ``body``."""


@dataclass(frozen=True)
class A2ASettings:
    #: The gateway's URL as clients reach it; by default taken from each request.
    public_url: str | None = None
    max_body_bytes: int = 1_048_576
    #: Largest non-streamed upstream answer relayed.
    max_response_bytes: int = 16 * 1_048_576


class A2AGateway:
    def __init__(
        self,
        forwarder: Forwarder,
        watcher: RouteWatcher,
        metrics: GatewayMetrics,
        settings: A2ASettings | None = None,
    ) -> None:
        self.forwarder = forwarder
        self.watcher = watcher
        self.metrics = metrics
        self.settings = settings or A2ASettings()
        self.cards = CardCache()
        self._by_route: dict[str, tuple[GaugeValue, HistogramValue]] = {}
        self._by_status: dict[tuple[str, int], CounterValue] = {}

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        extra: Headers = (),
        body: bytes | None = None,
        reply: Whole | None = None,
    ) -> None:
        """Answer one request whose canonical path starts with ``/a2a/``.

        ``extra``: headers every answer carries unless it sets them (the fast
        path's security headers; the middleware stack adds its own instead).
        ``body``: the JSON-RPC POST's body, already read (then ``receive`` only
        tells of a disconnect); ``reply``: writes its whole answer, if not streamed.
        """
        started = time.perf_counter()
        name, _, rest = path[5:].partition("/")
        route_label = "a2a"
        if name == "skills":
            skill, _, rest = rest.partition("/")
            target = Target(skill=skill)
            route_label = "a2a_skill"
        else:
            target = Target(service=name)
        status = 500
        method = scope["method"]
        card = rest == CARD_PATH and method in ("GET", "HEAD")
        if card:
            route_label = "card"
        in_flight, latency = self._route_metrics(route_label)
        in_flight.value += 1
        with route_span(scope["headers"], route_label, target.label, method) as span:
            try:
                if not (target.service or target.skill):
                    status = await _problem(send, NotFound("no such agent"), extra)
                elif card:
                    base_path = f"/a2a/{name}" if target.service else f"/a2a/skills/{target.skill}"
                    status = await self._card(scope, send, target, base_path, extra)
                elif rest == "" and method == "POST":
                    status = await self._jsonrpc(scope, receive, send, target, extra, body, reply)
                else:
                    status = await self._binding(scope, receive, send, target, rest, extra)
            finally:
                in_flight.value -= 1
                record_status(span, status)
                self._answered(route_label, status).inc()
                latency.observe(time.perf_counter() - started)

    def _route_metrics(self, route: str) -> tuple[GaugeValue, HistogramValue]:
        """The in-flight gauge and latency histogram of ``route`` (cached)."""
        found = self._by_route.get(route)
        if found is None:
            found = self._by_route[route] = (
                self.metrics.in_flight(route),
                self.metrics.latency(route),
            )
        return found

    def _answered(self, route: str, status: int) -> CounterValue:
        counter = self._by_status.get((route, status))
        if counter is None:
            counter = self.metrics.requests(route, str(status))
            self._by_status[route, status] = counter
        return counter

    # -- cards ---------------------------------------------------------------

    async def _card(
        self, scope: Scope, send: Send, target: Target, base_path: str, extra: Headers
    ) -> int:
        table = self.watcher.table
        service = target.service
        if service is None:
            routes = table.by_skill(target.skill or "")
            service = routes[0].service if routes else None
        body = None
        if service is not None:
            body = self.cards.get(table, base_path, service, self.public_url(scope) + base_path)
        if body is None:
            return await _problem(send, NotFound("no such agent"), extra)
        await send_body(send, 200, [_JSON, (b"cache-control", b"max-age=30")], body, extra)
        return 200

    def public_url(self, scope: Scope) -> str:
        """The gateway's base URL as this caller reaches it."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = (header(scope, b"host") or b"localhost").decode("latin-1")
        return f"{scope.get('scheme', 'http')}://{host}"

    # -- JSON-RPC ------------------------------------------------------------

    async def _jsonrpc(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: Target,
        extra: Headers,
        body: bytes | None = None,
        reply: Whole | None = None,
    ) -> int:
        request_id: Any = None
        try:
            if body is None:
                body = await read_body(receive, self.settings.max_body_bytes)
            elif len(body) > self.settings.max_body_bytes:
                raise PayloadTooLarge(
                    f"the request body is over {self.settings.max_body_bytes} bytes"
                )
            try:
                message = _parse(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                # RecursionError: nesting deeper than the decoder goes (a 1 MiB "[[[...").
                raise ParseError("the body is not JSON (or nests too deep)") from None
            if not isinstance(message, dict):
                raise BadRequest("a JSON-RPC request must be an object")
            request_id = _request_id(message.get("id"))
            method = message.get("method")
            params = message.get("params")
            params = params if isinstance(params, dict) else {}
            task_id = _task_of(method, params)
            message_id = _new_message_of(method, params) if task_id is None else None
            target = Target(target.service, target.skill, task_id, message_id)
            if target.skill and method in _SENDS:
                body = _with_skill(message, params, target.skill) or body
            exchange = await self.forwarder.send(
                target,
                b"POST",
                None,
                upstream_headers(scope),
                body,
                idempotent=method in IDEMPOTENT,
            )
        except GatewayError as error:
            status, headers, payload = jsonrpc_response(error, request_id)
            await send_body(send, status, headers, payload, extra)
            return status
        return await self._relay(
            receive, send, exchange, extra, learn=method in _SENDS, reply=reply
        )

    # -- HTTP+JSON binding ---------------------------------------------------

    async def _binding(
        self, scope: Scope, receive: Receive, send: Send, target: Target, rest: str, extra: Headers
    ) -> int:
        try:
            body = await read_body(receive, self.settings.max_body_bytes)
            method = scope["method"]
            task_id = message_id = None
            sends = method == "POST" and rest in _BINDING_SENDS
            if rest.startswith("tasks/"):
                task_id = rest[6:].partition("/")[0].partition(":")[0] or None
            elif sends:
                task_id, message_id, body = _binding_send(body, target.skill)
            query = scope.get("query_string", b"").decode("latin-1")
            path = rest + (f"?{query}" if query else "")
            exchange = await self.forwarder.send(
                Target(target.service, target.skill, task_id, message_id),
                method.encode(),
                path,
                upstream_headers(scope),
                body,
                idempotent=method in ("GET", "HEAD"),
            )
        except GatewayError as error:
            return await _problem(send, error, extra)
        return await self._relay(receive, send, exchange, extra, learn=sends)

    # -- answers -------------------------------------------------------------

    async def _relay(
        self,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        extra: Headers,
        *,
        learn: bool,
        reply: Whole | None = None,
    ) -> int:
        response = exchange.response
        content_type = b""
        for name, value in response.headers:
            if name == b"content-type":
                content_type = value
                break
        if content_type.startswith(b"text/event-stream"):
            await self._stream(receive, send, exchange, extra, learn=learn)
            return int(response.status)
        try:
            body = response.read_ready(self.settings.max_response_bytes)
            if body is None:
                body = await response.read(self.settings.max_response_bytes)
        except Exception:
            await exchange.finish(ok=False)
            raise
        exchange.finish_read()
        if learn:
            self._learn(exchange, body)
        if reply is None:
            await send_body(send, response.status, response.headers, body, extra)
        else:
            headers = body_headers(response.headers, len(body), extra)
            await reply.whole(response.status, headers, body)
        return int(response.status)

    async def _stream(
        self, receive: Receive, send: Send, exchange: Exchange, extra: Headers, *, learn: bool
    ) -> None:
        response = exchange.response
        headers = merge_headers(response.headers, extra) if extra else response.headers
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        completed = upstream_failed = False
        async with anyio.create_task_group() as tg:

            async def caller_gone() -> None:
                # Once the body is read, receive() returns only on disconnect.
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(caller_gone)
            # The first event names the task; it may span several chunks.
            first: bytearray | None = bytearray() if learn else None
            try:
                async for chunk in response.stream():
                    if first is not None:
                        start = max(0, len(first) - 3)  # an end may straddle two chunks
                        first += chunk
                        if first.find(b"\n\n", start) >= 0 or first.find(b"\r\n\r\n", start) >= 0:
                            self._learn(exchange, bytes(first))
                            first = None
                        elif len(first) > self.settings.max_response_bytes:
                            first = None
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                completed = True
            except UpstreamError:
                # The head is sent: all that is left is to end the stream early.
                upstream_failed = True
            tg.cancel_scope.cancel()
        await exchange.finish(ok=False if upstream_failed else None)
        if completed or upstream_failed:
            await send({"type": "http.response.body", "body": b""})

    def _learn(self, exchange: Exchange, data: bytes) -> None:
        """Remember which instance owns the task an answer created."""
        task_id = _created_task(data)
        if task_id:
            self.forwarder.router.affinity.remember(task_id, exchange.route.key)


_DECODER = json.JSONDecoder()
_JSON_SPACE = " \t\n\r"


def _parse(body: bytes) -> Any:
    """``json.loads(body)``, without its encoding detection for the usual body.

    A body that starts with ``{`` followed by anything but NUL is UTF-8 (a
    UTF-16 or UTF-32 one would have NULs, a UTF-8 BOM would come first):
    decoded as such and scanned directly. Anything else goes to ``json.loads``.
    """
    if body[:1] != b"{" or body[1:2] == b"\x00":
        return json.loads(body)
    text = body.decode("utf-8", "surrogatepass")
    value, end = _DECODER.raw_decode(text)
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise ValueError("extra data after the JSON value")
    return value


def _request_id(value: object) -> str | int | None:
    """The id to echo: A2A's string or integer, else ``null`` (a bool is no integer)."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    return None


def _task_of(method: object, params: dict[str, Any]) -> str | None:
    if method in _SENDS:
        message = params.get("message")
        task = message.get("taskId") if isinstance(message, dict) else None
    else:
        task = params.get("id") or params.get("taskId")
    return task if isinstance(task, str) and task else None


def _new_message_of(method: object, params: dict[str, Any]) -> str | None:
    """The ``messageId`` of a message that starts a task (no ``taskId``)."""
    if method not in _SENDS:
        return None
    message = params.get("message")
    found = message.get("messageId") if isinstance(message, dict) else None
    return found if isinstance(found, str) and found else None


def _name_skill(params: dict[str, Any], skill: str) -> bool:
    """Set ``metadata.skill`` in ``params`` unless the caller chose one; whether it did."""
    metadata = params.get("metadata")
    if isinstance(metadata, dict) and metadata.get("skill"):
        return False
    params["metadata"] = {**(metadata if isinstance(metadata, dict) else {}), "skill": skill}
    return True


def _with_skill(message: dict[str, Any], params: dict[str, Any], skill: str) -> bytes | None:
    """The request with ``metadata.skill`` set, unless the caller chose one."""
    if not _name_skill(params, skill):
        return None
    message["params"] = params
    return json.dumps(message, separators=(",", ":")).encode()


def _binding_send(body: bytes, skill: str | None) -> tuple[str | None, str | None, bytes]:
    """An HTTP+JSON send: the task it continues, else the ``messageId`` that starts
    one, and its body (naming ``skill``, if given)."""
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None, body  # the agent refuses it in its own words
    if not isinstance(params, dict):
        return None, None, body
    if skill and _name_skill(params, skill):
        body = json.dumps(params, separators=(",", ":")).encode()
    task_id = _task_of("SendMessage", params)
    message_id = _new_message_of("SendMessage", params) if task_id is None else None
    return task_id, message_id, body


def _created_task(data: bytes) -> str | None:
    text = data
    if data.startswith((b"data:", b"event:", b"id:", b":")):
        for line in data.splitlines():
            if line.startswith(b"data:"):
                text = line[5:]
                break
    try:
        answer = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    result = answer.get("result", answer) if isinstance(answer, dict) else None
    if not isinstance(result, dict):
        return None
    for key in ("task", "statusUpdate", "artifactUpdate", "message"):
        item = result.get(key)
        if isinstance(item, dict):
            found = item.get("id") if key == "task" else item.get("taskId")
            if isinstance(found, str):
                return found
    return None


async def _problem(send: Send, error: GatewayError, extra: Headers = ()) -> int:
    status, headers, body = problem_response(error)
    await send_body(send, status, headers, body, extra)
    return status
