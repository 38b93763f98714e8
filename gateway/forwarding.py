"""Sending one request upstream: pick, attempt, account, and retry when safe.

A retry goes to another instance, and only when it cannot run the request
twice: the request provably never reached the upstream (connect refused, a
dead pooled connection before any byte was written), or the call is
idempotent (``GetTask``, card fetches). Retries draw on a budget of at most
20 % of requests, so a sick service is not hit with a retry storm.

A new message is pinned to the instance it is sent to before it is sent. A
client's retry of it (same ``messageId``) goes there only: if that instance
cannot take it, the answer is 503 with ``Retry-After``, never a run elsewhere
(the first send may have run there, and the client may have lost only the
answer). The pin is dropped when the send provably never arrived.
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

from gateway.errors import NoHealthyUpstream, NotFound, UpstreamTimeout, UpstreamUnavailable
from gateway.limits import RetryBudget
from gateway.metrics import CounterValue, GatewayMetrics, HistogramValue
from gateway.proxy import UpstreamClient, UpstreamError, UpstreamResponse
from gateway.proxy import UpstreamTimeout as ClientTimeout
from gateway.router import NoRoute, Router
from gateway.table import Route
from gateway.telemetry import attempt_span, record_status, traced_headers
from registry.models import InstanceKey

__all__ = ["Exchange", "Finished", "Forwarder", "Target"]

#: One finished exchange: started and ended (``perf_counter``), route, status, headers sent.
Finished = tuple[float, float, Route, int, list[tuple[bytes, bytes]]]


class Target(NamedTuple):
    """Where a request goes: a service or a skill, and the task it concerns.

    A named tuple: made twice per request, and a frozen dataclass's
    ``__init__`` costs several times as much.
    """

    service: str | None = None
    skill: str | None = None
    task_id: str | None = None
    #: A new message's ``messageId``: a client's retry of it goes where the first went.
    message_id: str | None = None

    @property
    def label(self) -> str:
        return self.service or f"skill:{self.skill}"

    @property
    def message_key(self) -> str | None:
        """The new message's key among pins: the same ``messageId`` sent to another
        agent is another message."""
        if self.message_id is None:
            return None
        return f"{self.label}\n{self.message_id}"


class Exchange:
    """An upstream response in progress; :meth:`finish` exactly once when done with it."""

    __slots__ = ("_forwarder", "_open", "headers", "response", "route", "started")

    def __init__(
        self,
        forwarder: Forwarder,
        route: Route,
        response: UpstreamResponse,
        started: float,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self._forwarder = forwarder
        self.headers = headers
        self.route = route
        self.response = response
        self.started = started
        self._open = True

    async def finish(self, *, ok: bool | None = None) -> None:
        """Release the connection and account the outcome (a 5xx counts as failed)."""
        if not self._open:
            return
        self._open = False
        await self.response.aclose()
        self._account(ok)

    def finish_read(self, *, ok: bool | None = None) -> None:
        """:meth:`finish` for a response whose body was read whole (its connection
        is back in the pool already): nothing to await."""
        if not self._open:
            return
        self._open = False
        self._account(ok)

    def _account(self, ok: bool | None) -> None:
        healthy = self.response.status < 500 if ok is None else ok
        self._forwarder.settle(self.route, ok=healthy)
        # The dashboard's recent exchanges: one append; parsed only when it is read.
        self._forwarder.finished.append(
            (self.started, time.perf_counter(), self.route, self.response.status, self.headers)
        )


#: Upstream statuses that mean "this instance is in trouble", not "your request is bad".
_FAILING = frozenset((500, 502, 503, 504))


class Forwarder:
    def __init__(
        self,
        router: Router,
        client: UpstreamClient,
        budget: RetryBudget,
        metrics: GatewayMetrics,
        *,
        max_attempts: int = 3,
    ) -> None:
        self.router = router
        self.client = client
        self.budget = budget
        self.metrics = metrics
        self.max_attempts = max_attempts
        self._by_service: dict[str, tuple[HistogramValue, CounterValue]] = {}
        self.finished: deque[Finished] = deque(maxlen=200)

    async def send(
        self,
        target: Target,
        method: bytes,
        path: str | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        idempotent: bool,
    ) -> Exchange:
        """Send to an instance of ``target``; ``path`` ``None`` means the route's endpoint.

        Raises a :class:`~gateway.errors.GatewayError` when no attempt succeeds.
        """
        self.budget.record_request()
        tried: list[InstanceKey] = []
        message_key = target.message_key
        messages = self.router.messages
        # Sent before (a retry): only its first instance may answer it.
        held = message_key is not None and message_key in messages
        while True:
            try:
                route = self.router.pick(
                    service=target.service,
                    skill=target.skill,
                    task_id=target.task_id,
                    message_key=message_key,
                    exclude=tried,
                )
            except NoRoute as exc:
                if exc.held:
                    raise _held_elsewhere(target) from exc
                if not exc.known and not tried:
                    raise NotFound("no such agent") from exc
                raise NoHealthyUpstream(
                    f"no healthy instance of {target.label}", retry_after=1.0
                ) from exc
            tried.append(route.key)
            if message_key is not None and not held:
                messages.remember(message_key, route.key)
            upstreams = self.router.upstreams
            upstreams.begin(route.key)
            started = time.perf_counter()
            try:
                with attempt_span(route.service, route.key[1], route.origin) as span:
                    sent = traced_headers(headers, span)
                    response = await self.client.request(
                        route.origin, method, _target_bytes(route, path), sent, body
                    )
                    record_status(span, response.status)
            except UpstreamError as exc:
                timeout = isinstance(exc, ClientTimeout)
                # Nothing sent and no timeout: refused at once (see Upstreams.end).
                self.settle(route, ok=False, refused=not exc.sent and not timeout)
                outcome = "timeout" if timeout else "error"
                self.metrics.upstream(route.service, outcome).inc()
                if message_key is not None and not exc.sent:
                    if held:
                        raise _held_elsewhere(target) from exc
                    messages.forget(message_key, route.key)  # it never arrived
                reason = "idempotent" if exc.sent else "unreached"
                if self._may_retry(route, not exc.sent or idempotent, tried, reason):
                    continue
                if timeout:
                    raise UpstreamTimeout(f"{target.label} did not answer in time") from exc
                # Say whether it may have run: a caller must not assume it did not.
                failed = "failed before answering" if exc.sent else "could not be reached"
                raise UpstreamUnavailable(f"{target.label} {failed}") from exc
            latency, answered = self._service_metrics(route.service)
            latency.observe(time.perf_counter() - started)
            if response.status in _FAILING:
                self.metrics.upstream(route.service, "5xx").inc()
                if idempotent and self._may_retry(route, True, tried, "5xx"):
                    await response.aclose()
                    self.settle(route, ok=False)
                    continue
            else:
                answered.inc()
            return Exchange(self, route, response, started, sent)

    def _service_metrics(self, service: str) -> tuple[HistogramValue, CounterValue]:
        """The upstream latency histogram and ``ok`` counter of ``service`` (cached)."""
        found = self._by_service.get(service)
        if found is None:
            metrics = self.metrics
            found = (metrics.upstream_latency(service), metrics.upstream(service, "ok"))
            self._by_service[service] = found
        return found

    def settle(self, route: Route, *, ok: bool, refused: bool = False) -> None:
        """Account the end of one attempt on ``route`` (outlier detection included)."""
        peers = len(self.router.table().services.get(route.service, ()))
        self.router.upstreams.end(route.key, ok=ok, peers=max(peers, 1), refused=refused)

    def _may_retry(self, route: Route, safe: bool, tried: list[InstanceKey], reason: str) -> bool:
        if not safe or len(tried) >= self.max_attempts:
            return False
        if not self.budget.try_acquire_retry():
            return False
        self.metrics.retries(route.service, reason).inc()
        return True


def _held_elsewhere(target: Target) -> NoHealthyUpstream:
    return NoHealthyUpstream(
        f"the instance of {target.label} that received this message earlier is unavailable;"
        " retry later (a new messageId runs it anew elsewhere)",
        retry_after=1.0,
    )


def _target_bytes(route: Route, path: str | None) -> bytes:
    if path is None:
        return route.endpoint_target
    return (route.base_path + path).encode()
