"""Tracing of the gateway's routes and upstream attempts (OpenTelemetry API only).

Span vocabulary: ``mesh.route`` (a request the gateway answers, kind SERVER,
child of the caller's ``traceparent``) and ``mesh.upstream`` (one attempt at
an instance, kind CLIENT); the attempt's context goes upstream as W3C
``traceparent``/``tracestate``, so the agent's spans join the same trace.

When the process configured no SDK tracer provider the API's spans would be
no-ops; then nothing is created at all and the caller's ``traceparent``
travels upstream untouched, which keeps one trace id across hops for free.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import ProxyTracerProvider, Span, SpanKind, Status, StatusCode

__all__ = [
    "TRACE_HEADERS",
    "attempt_span",
    "record_status",
    "route_span",
    "traced_headers",
    "tracing_enabled",
]

_TRACER = trace.get_tracer("meshgate.gateway")
TRACE_HEADERS = frozenset((b"traceparent", b"tracestate", b"baggage"))


class _HeaderGetter(Getter[list[tuple[bytes, bytes]]]):
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.encode()
        found = [v.decode("latin-1") for k, v in carrier if k == name]
        return found or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _HeaderGetter()


_enabled = False
_checked_until = float("-inf")


def tracing_enabled() -> bool:
    """True once the process installed an SDK tracer provider.

    Asked on every request, so the answer is kept for a second: the API's
    lookup reads the environment each time (~15 % of a proxied request). A
    provider, once installed, is never replaced.
    """
    global _enabled, _checked_until
    now = time.monotonic()
    if _enabled or now < _checked_until:
        return _enabled
    _enabled = not isinstance(trace.get_tracer_provider(), ProxyTracerProvider)
    _checked_until = now + 1.0
    return _enabled


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def route_span(
    headers: list[tuple[bytes, bytes]], route: str, target: str, method: str
) -> AbstractContextManager[Span | None]:
    """``mesh.route`` for one request, continuing the caller's trace."""
    if not tracing_enabled():
        return _NO_SPAN  # no generator frame per request when nobody records
    return _route_span(headers, route, target, method)


@contextlib.contextmanager
def _route_span(
    headers: list[tuple[bytes, bytes]], route: str, target: str, method: str
) -> Iterator[Span | None]:
    parent = propagate.extract(headers, getter=_GETTER)
    attributes = {"mesh.route": route, "mesh.target": target, "http.request.method": method}
    with _TRACER.start_as_current_span(
        "mesh.route", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def attempt_span(
    service: str, instance: str, origin: tuple[str, int]
) -> AbstractContextManager[Span | None]:
    """``mesh.upstream`` for one attempt at one instance."""
    if not tracing_enabled():
        return _NO_SPAN
    return _attempt_span(service, instance, origin)


@contextlib.contextmanager
def _attempt_span(service: str, instance: str, origin: tuple[str, int]) -> Iterator[Span | None]:
    attributes: dict[str, Any] = {
        "mesh.service": service,
        "mesh.instance": instance,
        "server.address": origin[0],
        "server.port": origin[1],
    }
    with _TRACER.start_as_current_span(
        "mesh.upstream", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def traced_headers(
    headers: Iterable[tuple[bytes, bytes]], span: Span | None
) -> list[tuple[bytes, bytes]]:
    """``headers`` carrying ``span``'s context instead of the caller's (when tracing)."""
    if span is None:
        return headers if isinstance(headers, list) else list(headers)  # read, never changed
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span, otel_context.get_current()))
    out = [(k, v) for k, v in headers if k not in TRACE_HEADERS]
    out.extend((k.encode(), v.encode("latin-1")) for k, v in carrier.items())
    return out


def record_status(span: Span | None, status: int) -> None:
    """Note the HTTP status on ``span``; 5xx marks it as an error."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
