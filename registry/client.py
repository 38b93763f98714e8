"""The registry's HTTP client: one method per route, and watches over blocking queries.

Problem-details answers come back as the matching :class:`RegistryError`; a
registry that cannot be reached is :class:`BackendUnavailable`. Watches follow
Consul's client rules for blocking queries
(https://developer.hashicorp.com/consul/api-docs/features/blocking).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import httpx
from pydantic import TypeAdapter, ValidationError

from registry.backends.base import Indexed
from registry.errors import BackendUnavailable, RegistryError, error_for
from registry.models import AgentQuery, Health, Instance, Registration, ServiceSummary

__all__ = ["Backoff", "RegistryClient"]

logger = logging.getLogger("meshgate.registry.client")

T = TypeVar("T")

_INSTANCE = TypeAdapter(Instance)
_INSTANCES = TypeAdapter(list[Instance])
_SERVICES = TypeAdapter(list[ServiceSummary])
#: The wait a blocking query gets when the caller names an index but no wait
#: (Consul's default; the registry caps waits at the same value).
DEFAULT_WAIT_SECONDS = 300.0
#: Added to a blocking query's wait for the request timeout: the registry adds
#: up to wait/16 of jitter, and the answer still has to travel.
_WAIT_MARGIN_SECONDS = 5.0
#: At most this many watch queries a second, however fast the index moves.
_MAX_QUERIES_PER_SECOND = 20.0
_GATEWAY_STATUSES = frozenset((502, 503, 504))


class Backoff:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**n))."""

    def __init__(self, base: float = 0.1, cap: float = 5.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 32))
        self.failures += 1
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.failures = 0


class _Pacer:
    """Spaces calls at least ``interval`` apart, so a flapping index cannot spin."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last = float("-inf")

    async def pace(self) -> None:
        delay = self._last + self._interval - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
        self._last = time.monotonic()


def _retryable(exc: RegistryError) -> bool:
    # An outage or an internal error may pass; a refusal (4xx) will not.
    return isinstance(exc, BackendUnavailable) or type(exc) is RegistryError


class RegistryClient:
    """Talks to a registry service at ``base_url`` through an injected ``httpx`` client.

    The caller owns ``http`` (its pool, TLS settings and lifetime).
    ``api_key`` is sent as a bearer token and never appears in errors or reprs.
    """

    def __init__(
        self, base_url: str, *, http: httpx.AsyncClient, api_key: str | None = None
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = http
        self._api_key = api_key
        # For messages: the address without any userinfo, query or fragment.
        parts = urlsplit(self._base)
        self._where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def __repr__(self) -> str:
        return f"RegistryClient({self._where!r})"

    # -- instances ----------------------------------------------------------

    async def register(
        self, service: str, instance: str, registration: Registration
    ) -> tuple[Instance, bool]:
        """Register (or replace) an instance; return the record and whether it is new."""
        body = registration.model_dump(mode="json")
        response = await self._send("PUT", _instance_path(service, instance), json=body)
        return _parse(_INSTANCE, response), response.status_code == 201

    async def deregister(self, service: str, instance: str) -> None:
        """Remove an instance (:class:`~registry.errors.NotFound` if absent)."""
        await self._send("DELETE", _instance_path(service, instance))

    async def get(self, service: str, instance: str) -> Instance:
        """One instance (:class:`~registry.errors.NotFound` if absent)."""
        return _parse(_INSTANCE, await self._send("GET", _instance_path(service, instance)))

    async def heartbeat(
        self, service: str, instance: str, status: Health = Health.PASSING, note: str = ""
    ) -> Instance:
        """Feed the instance's TTL check with ``status`` (NotFound if unknown)."""
        path = _instance_path(service, instance) + "/heartbeat"
        body = {"status": Health(status).value, "note": note}
        return _parse(_INSTANCE, await self._send("PUT", path, json=body))

    # -- lists --------------------------------------------------------------

    async def services(
        self, *, index: int | None = None, wait: float | None = None
    ) -> Indexed[list[ServiceSummary]]:
        """Every service with its instance counts by health."""
        response = await self._list("/v1/services", {}, index, wait)
        return Indexed(_index_of(response), _parse(_SERVICES, response), _stale_of(response))

    async def instances(
        self,
        service: str,
        *,
        passing_only: bool = False,
        index: int | None = None,
        wait: float | None = None,
    ) -> Indexed[list[Instance]]:
        """Instances of one service; with ``index``, a blocking query."""
        params = {"passing": "true"} if passing_only else {}
        path = f"/v1/services/{_segment(service)}/instances"
        response = await self._list(path, params, index, wait)
        return Indexed(_index_of(response), _parse(_INSTANCES, response), _stale_of(response))

    async def all_instances(
        self, *, passing_only: bool = False, index: int | None = None, wait: float | None = None
    ) -> Indexed[list[Instance]]:
        """Every instance of every service; with ``index``, a blocking query."""
        params = {"passing": "true"} if passing_only else {}
        response = await self._list("/v1/instances", params, index, wait)
        return Indexed(_index_of(response), _parse(_INSTANCES, response), _stale_of(response))

    async def agents(
        self, query: AgentQuery, *, index: int | None = None, wait: float | None = None
    ) -> Indexed[list[Instance]]:
        """Agent instances matching ``query``; with ``index``, a blocking query."""
        params = {
            name: value
            for name, value in (("skill", query.skill), ("tag", query.tag), ("q", query.text))
            if value
        }
        if query.passing_only:
            params["passing"] = "true"
        response = await self._list("/v1/agents", params, index, wait)
        return Indexed(_index_of(response), _parse(_INSTANCES, response), _stale_of(response))

    # -- watches ------------------------------------------------------------

    def watch_instances(
        self, service: str, *, passing_only: bool = False, wait: float = 30.0
    ) -> AsyncGenerator[Indexed[list[Instance]], None]:
        """Snapshots of a service's instances: the current one, then one per change."""

        async def fetch(index: int) -> Indexed[list[Instance]]:
            return await self.instances(service, passing_only=passing_only, index=index, wait=wait)

        return self._watch(fetch, f"instances of {service}")

    def watch_all(self, *, wait: float = 30.0) -> AsyncGenerator[Indexed[list[Instance]], None]:
        """Snapshots of every instance: the current one, then one per change."""

        async def fetch(index: int) -> Indexed[list[Instance]]:
            return await self.all_instances(index=index, wait=wait)

        return self._watch(fetch, "all instances")

    def watch_agents(
        self, query: AgentQuery, *, wait: float = 30.0
    ) -> AsyncGenerator[Indexed[list[Instance]], None]:
        """Snapshots of the agents matching ``query``: the current one, then one per change."""

        async def fetch(index: int) -> Indexed[list[Instance]]:
            return await self.agents(query, index=index, wait=wait)

        return self._watch(fetch, "agents")

    async def _watch(
        self, fetch: Callable[[int], Awaitable[Indexed[T]]], what: str
    ) -> AsyncGenerator[Indexed[T], None]:
        # Index 0 answers at once, so the first query is the first snapshot.
        index = 0
        backoff = Backoff()
        pacer = _Pacer(1.0 / _MAX_QUERIES_PER_SECOND)
        while True:
            await pacer.pace()
            try:
                result = await fetch(index)
            except RegistryError as exc:
                if not _retryable(exc):
                    raise
                if backoff.failures == 0:
                    logger.warning("watch of %s: %s; retrying", what, exc.detail)
                await anyio.sleep(backoff.next_delay())
                continue
            if backoff.failures:
                logger.info("watch of %s: the registry answers again", what)
                backoff.reset()
            # An index of 0 would make every query return at once: treat it as 1.
            current = max(result.index, 1)
            if current < index:
                # The store went back (a restart, a failover): restart the loop
                # at 0 as Consul requires; this answer is its first snapshot.
                logger.info("watch of %s: index went back %d -> %d", what, index, current)
                index = 0
            if current == index:
                continue  # the wait ran out with nothing new
            index = current
            yield Indexed(current, result.value)

    # -- transport ----------------------------------------------------------

    async def _list(
        self, path: str, params: dict[str, str], index: int | None, wait: float | None
    ) -> httpx.Response:
        if index is None:
            return await self._send("GET", path, params=params)
        wait = DEFAULT_WAIT_SECONDS if wait is None else max(wait, 0.0)
        params = {**params, "index": str(max(index, 0)), "wait": f"{round(wait * 1000)}ms"}
        # The read must outlast the hold, or a quiet watch would time out.
        configured = self._http.timeout
        timeout = httpx.Timeout(
            connect=configured.connect,
            read=wait * 17 / 16 + _WAIT_MARGIN_SECONDS,
            write=configured.write,
            pool=configured.pool,
        )
        return await self._send("GET", path, params=params, read_timeout=timeout)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        read_timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            response = await self._http.request(
                method,
                self._base + path,
                params=params,
                json=json,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if read_timeout is None else read_timeout,
            )
        except httpx.TimeoutException as exc:
            # ``from None``: the request on the cause carries the bearer header.
            raise BackendUnavailable(
                f"the registry at {self._where} did not answer in time ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise BackendUnavailable(
                f"cannot reach the registry at {self._where}: {reason}"
            ) from None
        if response.is_success:
            return response
        raise _error_from(response, self._where)


def _segment(name: str) -> str:
    # Names are DNS labels, but a bad one must reach the registry (and be
    # refused by it) as one path segment, not as a different route.
    return quote(name, safe="")


def _instance_path(service: str, instance: str) -> str:
    return f"/v1/services/{_segment(service)}/instances/{_segment(instance)}"


def _index_of(response: httpx.Response) -> int:
    raw = response.headers.get("x-meshgate-index", "").strip()
    return int(raw) if raw.isdigit() else 0


def _stale_of(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("x-meshgate-stale-seconds", "0"))
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _parse(adapter: TypeAdapter[T], response: httpx.Response) -> T:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise RegistryError(
            f"the registry answered a body this client cannot read ({exc.error_count()} errors)"
        ) from None


def _error_from(response: httpx.Response, where: str) -> RegistryError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not ("type" in body or "detail" in body):
        # Not problem details: a proxy or something else answered.
        body = {"detail": f"the registry at {where} answered HTTP {status}"}
    error = error_for(body, status)
    if status in _GATEWAY_STATUSES and not isinstance(error, BackendUnavailable):
        return BackendUnavailable(error.detail, errors=error.errors)
    return error
