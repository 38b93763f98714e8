"""The HTTP face of the Consul double: the endpoints the ``consul`` backend uses.

Served by uvicorn on a real loopback port (:func:`tests.support.live.serve`).
Fault knobs for tests: :attr:`ConsulDouble.delay` slows every answer, and
:meth:`ConsulDouble.forget` drops all state so the index goes back to 1 (as a
cluster restored from an old snapshot does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.consul_double.records import Check, parse_duration
from tests.support.consul_double.state import ConsulState, lower_keys

__all__ = ["ConsulDouble"]

_DEFAULT_WAIT = 300.0  # five minutes, capped at ten
_MAX_WAIT = 600.0
_STATES = ("any", "passing", "warning", "critical")


class ConsulDouble:
    """A Consul agent (``-dev``) as far as the registry's backend talks to it."""

    def __init__(
        self,
        *,
        token: str | None = None,
        datacenter: str = "dc1",
        min_deregister_after: float = 60.0,
        tick: float = 0.02,
    ) -> None:
        self.state = ConsulState()
        self.token = token
        self.datacenter = datacenter
        self.min_deregister_after = min_deregister_after
        self.tick = tick
        #: Seconds added before every answer ("slow answers").
        self.delay = 0.0
        #: Requests seen, as ``(method, path, query)``; tests read what was asked.
        self.requests: list[tuple[str, str, str]] = []
        self.held = 0  # blocking queries being held right now

    def forget(self) -> None:
        """Drop every service, check and key: indexes start again from 1."""
        old, self.state = self.state, ConsulState()
        old.bump()  # wake the queries held on the old state

    # -- the app -------------------------------------------------------------

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as http:
                timers = asyncio.create_task(self._timers(http))
                try:
                    yield
                finally:
                    timers.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await timers

        routes = [
            Route("/v1/agent/service/register", self._register, methods=["PUT"]),
            Route("/v1/agent/service/deregister/{sid}", self._deregister, methods=["PUT"]),
            Route("/v1/agent/check/{verb:str}/{cid}", self._ttl_update, methods=["PUT"]),
            Route("/v1/health/service/{name}", self._health_service, methods=["GET"]),
            Route("/v1/health/state/{state}", self._health_state, methods=["GET"]),
            Route("/v1/kv/{key:path}", self._kv, methods=["GET", "PUT", "DELETE"]),
            Route("/v1/status/leader", self._leader, methods=["GET"]),
            Route("/v1/txn", self._txn, methods=["PUT"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    async def _timers(self, http: httpx.AsyncClient) -> None:
        running: set[asyncio.Task[None]] = set()
        while True:
            for check in self.state.expire():
                task = asyncio.create_task(self._run_http_check(http, self.state, check))
                running.add(task)
                task.add_done_callback(running.discard)
            self.state.reap(self.min_deregister_after)
            await asyncio.sleep(self.tick)

    @staticmethod
    async def _run_http_check(http: httpx.AsyncClient, state: ConsulState, check: Check) -> None:
        # https://developer.hashicorp.com/consul/docs/services/usage/checks#http-checks:
        # 2xx is passing, 429 warning, anything else (or no answer) critical.
        spec = check.http
        headers = {
            k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in spec["header"].items()
        }
        try:
            response = await http.request(
                spec["method"],
                spec["url"],
                headers=headers,
                content=spec["body"].encode() or None,
                timeout=check.timeout,
            )
        except httpx.HTTPError as exc:
            state.record_http(check, "critical", f"{spec['method']} {spec['url']}: {exc!r}")
            return
        code = response.status_code
        status = "passing" if 200 <= code < 300 else "warning" if code == 429 else "critical"
        output = f"HTTP {spec['method']} {spec['url']}: {code} Output: {response.text[:4096]}"
        state.record_http(check, status, output)

    # -- plumbing ------------------------------------------------------------

    async def _enter(self, request: Request) -> Response | None:
        """Delay, log, check the token and the datacenter; a refusal is returned."""
        self.requests.append((request.method, request.url.path, request.url.query))
        if self.delay:
            await asyncio.sleep(self.delay)
        # ACL tokens: https://developer.hashicorp.com/consul/api-docs/api-structure#authentication
        if self.token is not None:
            given = request.headers.get("x-consul-token") or request.query_params.get("token")
            bearer = request.headers.get("authorization", "")
            if given != self.token and bearer != f"Bearer {self.token}":
                return PlainTextResponse("Permission denied", status_code=403)
        # ?stale and ?consistent change nothing on one server that is its own
        # leader (https://developer.hashicorp.com/consul/api-docs/features/consistency);
        # ?dc names a datacenter (https://developer.hashicorp.com/consul/api-docs/api-structure).
        dc = request.query_params.get("dc")
        if dc and dc != self.datacenter:
            return PlainTextResponse(f"No path to datacenter {dc}", status_code=500)
        return None

    async def _blocking(
        self, request: Request, current: Callable[[], int]
    ) -> tuple[int, Response | None]:
        """Hold a read per https://developer.hashicorp.com/consul/api-docs/features/blocking.

        With ``?index=N`` (N > 0) the answer waits until the endpoint's index
        is greater than N or ``?wait`` (default 5 min, max 10 min, plus up to
        wait/16 of jitter) passes; it then answers with the current state.
        """
        refusal = await self._enter(request)
        if refusal is not None:
            return 0, refusal
        params = request.query_params
        try:
            index = int(params.get("index") or 0)
            wait = min(parse_duration(params["wait"]), _MAX_WAIT) if "wait" in params else None
        except ValueError as exc:
            return 0, PlainTextResponse(f"Invalid index or wait: {exc}", status_code=400)
        if index > 0 and current() <= index:
            wait = wait or _DEFAULT_WAIT
            wait += random.uniform(0, wait / 16)  # Consul's own jitter
            state = self.state
            self.held += 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        # A forgotten (restored) state answers at once, with an
                        # index that went back: the docs tell clients to reset.
                        while self.state is state and current() <= index:
                            await state.changed()
            finally:
                self.held -= 1
        return max(current(), 1), None  # Consul never reports index 0

    def _answer(self, body: Any, index: int, status: int = 200) -> Response:
        headers = {
            "X-Consul-Index": str(index),
            "X-Consul-KnownLeader": "true",
            "X-Consul-LastContact": "0",
        }
        return JSONResponse(body, status_code=status, headers=headers)

    # -- agent ---------------------------------------------------------------

    async def _register(self, request: Request) -> Response:
        if (refusal := await self._enter(request)) is not None:
            return refusal
        body = lower_keys(json.loads(await request.body()))
        replace = request.query_params.get("replace-existing-checks") in ("true", "1")
        try:
            self.state.register(body, replace_checks=replace)
        except (KeyError, ValueError) as exc:
            return PlainTextResponse(f"Invalid service definition: {exc}", status_code=400)
        return PlainTextResponse("")

    async def _deregister(self, request: Request) -> Response:
        if (refusal := await self._enter(request)) is not None:
            return refusal
        sid = request.path_params["sid"]
        if not self.state.deregister(sid):
            return PlainTextResponse(f'Unknown service ID "{sid}"', status_code=404)
        return PlainTextResponse("")

    async def _ttl_update(self, request: Request) -> Response:
        """``PUT /v1/agent/check/{pass,warn,fail}/:id?note=`` (https://developer.hashicorp.com/consul/api-docs/agent/check#ttl-check-pass)."""
        if (refusal := await self._enter(request)) is not None:
            return refusal
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}.get(
            request.path_params["verb"]
        )
        check = self.state.checks.get(request.path_params["cid"])
        if status is None:
            return PlainTextResponse("Not found", status_code=404)
        if check is None:
            return PlainTextResponse(f'Unknown check ID "{request.path_params["cid"]}"', 404)
        if check.type != "ttl":
            return PlainTextResponse("CheckID does not have associated TTL", status_code=500)
        check.deadline = self.state.clock() + check.ttl  # every update re-arms the TTL
        self.state.set_check(check, status, request.query_params.get("note", ""))
        return PlainTextResponse("")

    # -- health --------------------------------------------------------------

    async def _health_service(self, request: Request) -> Response:
        """``GET /v1/health/service/:service`` with ``?passing`` (https://developer.hashicorp.com/consul/api-docs/health#list-service-instances-for-service)."""
        name = request.path_params["name"]
        index, refusal = await self._blocking(
            request, lambda: self.state.health_service_index(name)
        )
        if refusal is not None:
            return refusal
        entries = self.state.service_entries(name)
        if "passing" in request.query_params:  # every check of the entry, node checks too
            entries = [(s, cs) for s, cs in entries if all(c.status == "passing" for c in cs)]
        body = [
            {
                "Node": {
                    "Node": "double-node",
                    "Address": "127.0.0.1",
                    "Datacenter": self.datacenter,
                },
                "Service": s.render(),
                "Checks": [c.render() for c in cs],
            }
            for s, cs in entries
        ]
        return self._answer(body, index)

    async def _health_state(self, request: Request) -> Response:
        """``GET /v1/health/state/:state`` (https://developer.hashicorp.com/consul/api-docs/health#list-checks-in-state)."""
        wanted = request.path_params["state"]
        if wanted not in _STATES:
            return PlainTextResponse(f"Bad state {wanted!r}", status_code=400)
        index, refusal = await self._blocking(request, lambda: self.state.tables["checks"])
        if refusal is not None:
            return refusal
        checks = [
            c.render() for c in self.state.checks.values() if wanted == "any" or c.status == wanted
        ]
        return self._answer(checks, index)

    # -- KV ------------------------------------------------------------------

    async def _kv(self, request: Request) -> Response:
        """``/v1/kv/:key`` (https://developer.hashicorp.com/consul/api-docs/kv)."""
        key = request.path_params["key"]
        params = request.query_params
        recurse = "recurse" in params
        if request.method == "GET":
            index, refusal = await self._blocking(
                request, lambda: self.state.kv_index(key, recurse=recurse)
            )
            if refusal is not None:
                return refusal
            found = (
                sorted(k for k in self.state.kv if k.startswith(key))
                if recurse
                else [key]
                if key in self.state.kv
                else []
            )
            if not found:
                return self._answer(None, index, status=404)  # 404 still carries the index
            return self._answer([self.state.kv[k].render(k) for k in found], index)
        if (refusal := await self._enter(request)) is not None:
            return refusal
        try:
            cas = int(params["cas"]) if "cas" in params else None
            flags = int(params.get("flags") or 0)
        except ValueError:
            return PlainTextResponse("Invalid cas or flags", status_code=400)
        if request.method == "PUT":
            body = await request.body()
            if len(body) > 512 * 1024:  # the KV value limit
                return PlainTextResponse("Value exceeds 524288 byte limit", status_code=413)
            done = self.state.kv_put(key, body, cas=cas, flags=flags)
        else:
            done = self.state.kv_delete(key, recurse=recurse, cas=cas)
        return JSONResponse(done)

    async def _txn(self, request: Request) -> Response:
        """``PUT /v1/txn``; 409 on rollback (https://developer.hashicorp.com/consul/api-docs/txn)."""
        if (refusal := await self._enter(request)) is not None:
            return refusal
        try:
            ops = [op["KV"] for op in json.loads(await request.body())]
        except (ValueError, KeyError, TypeError) as exc:
            return PlainTextResponse(f"Failed to parse body: {exc}", status_code=400)
        errors = self.state.kv_txn(ops)
        if errors:
            body = {"Results": None, "Errors": [{"OpIndex": 0, "What": e} for e in errors]}
            return JSONResponse(body, status_code=409)
        results = [{"KV": {"Key": op["Key"]}} for op in ops]
        return self._answer({"Results": results, "Errors": None}, self.state.index)

    async def _leader(self, request: Request) -> Response:
        if (refusal := await self._enter(request)) is not None:
            return refusal
        return JSONResponse("127.0.0.1:8300")
