"""Hosting pieces shared by tool servers and agents."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from mcp_servers.hosting import (
    HostingConfig,
    HttpMetrics,
    MetricsMiddleware,
    ops_routes,
    registered,
)
from registry.backends import MemoryBackend
from registry.errors import Unauthorized
from registry.models import CheckSpec, Kind, Registration
from registry.server import RegistrySettings, create_app
from registry.ssrf import UrlPolicy
from tests.registry.server.conftest import running_registry
from tests.support.live import serve

pytestmark = pytest.mark.anyio


# -- HostingConfig ----------------------------------------------------------------


def test_defaults() -> None:
    config = HostingConfig(service="calc", port=8123)
    assert re.fullmatch(r"calc-[0-9a-f]{4}", config.instance_id)
    assert config.instance == config.instance_id
    assert config.base_url == "http://127.0.0.1:8123"
    assert config.check == CheckSpec(
        ttl_seconds=10, interval_seconds=1, deregister_critical_after_seconds=60
    )
    assert "secret" not in repr(HostingConfig(service="calc", registry_api_key="secret"))


def test_public_url_wins_and_ipv6_hosts_are_bracketed() -> None:
    assert HostingConfig(service="a", public_url="http://a.mesh:80/").base_url == "http://a.mesh:80"
    assert HostingConfig(service="a", host="::1", port=9).base_url == "http://[::1]:9"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service": "Bad_Name"}, "not a DNS label"),
        ({"service": "ok", "instance": "no way"}, "not a DNS label"),
        ({"service": "ok", "port": 70000}, "out of range"),
    ],
)
def test_invalid_configs(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HostingConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "port"), [("127.0.0.1", 0), ("0.0.0.0", 8000)])
def test_an_unknowable_url_is_an_error(host: str, port: int) -> None:
    with pytest.raises(ValueError, match="set public_url"):
        _ = HostingConfig(service="a", host=host, port=port).base_url


# -- ops routes and metrics ----------------------------------------------------------


async def _events(request: Request) -> Response:
    async def stream() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


async def _item(request: Request) -> Response:
    return Response(str(request.path_params["item"]))


async def test_ops_routes_and_metrics_by_route_template() -> None:
    state = {"ready": False}
    metrics = HttpMetrics()
    routes = [
        *ops_routes(lambda: state["ready"], metrics.registry),
        Route("/items/{item}", _item),
        Route("/events", _events),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(MetricsMiddleware, metrics=metrics)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 503
        state["ready"] = True
        assert (await client.get("/readyz")).status_code == 200
        for item in ("a", "b", "c"):
            assert (await client.get(f"/items/{item}")).text == item
        assert (await client.get("/events")).text == "data: one\n\n"
        exposition = (await client.get("/metrics")).text
    assert 'meshgate_http_requests_total{method="GET",route="/items/{item}",status="200"} 3.0' in (
        exposition
    )
    assert 'meshgate_http_requests_total{method="GET",route="/readyz",status="503"} 1.0' in (
        exposition
    )
    # A GET event stream is counted, not timed.
    assert 'route="/events",status="200"} 1.0' in exposition
    assert 'meshgate_http_request_seconds_count{method="GET",route="/events"}' not in exposition
    assert "meshgate_http_in_flight 1.0" in exposition  # the /metrics request itself


async def test_metrics_can_share_a_registry_and_skip_lifespan_scopes() -> None:
    shared = CollectorRegistry()
    metrics = HttpMetrics(shared)
    assert metrics.registry is shared
    app = Starlette(middleware=[Middleware(MetricsMiddleware, metrics=metrics)])
    async with app.router.lifespan_context(app):
        pass
    async with serve(app) as url, httpx.AsyncClient() as client:  # lifespan goes through it
        assert (await client.get(url + "/x")).status_code == 404


# -- registered ---------------------------------------------------------------------


def _registration(url: str) -> Registration:
    tools = [{"name": "t", "inputSchema": {"type": "object"}}]
    check = CheckSpec(ttl_seconds=5, interval_seconds=0)
    return Registration(kind=Kind.MCP_SERVER, url=url, tools=tools, check=check)


async def test_no_registry_yields_none() -> None:
    config = HostingConfig(service="calc")
    async with registered(config, _registration("http://127.0.0.1:1/mcp")) as registering:
        assert registering is None


async def test_registers_while_running_and_deregisters_after() -> None:
    async with running_registry() as registry:
        config = HostingConfig(service="calc", instance="calc-1", registry_url="http://registry")
        path = "/v1/services/calc/instances/calc-1"
        async with registered(
            config, _registration("http://127.0.0.1:9/mcp"), http=registry
        ) as registering:
            assert registering is not None
            record = await registering.wait_registered()
            assert record.url == "http://127.0.0.1:9/mcp"
            assert (await registry.get(path)).status_code == 200
        assert (await registry.get(path)).status_code == 404


async def test_a_refusal_is_reported_not_raised() -> None:
    async with running_registry(api_keys=("right",)) as registry:
        config = HostingConfig(
            service="calc", registry_url="http://registry", registry_api_key="wrong"
        )
        async with registered(config, _registration("http://127.0.0.1:9/mcp"), http=registry) as r:
            assert r is not None
            with pytest.raises(Unauthorized):
                await r.wait_registered()


async def test_it_makes_and_closes_its_own_client_when_given_none() -> None:
    app = create_app(MemoryBackend(), RegistrySettings(url_policy=UrlPolicy.loopback()))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as registry:
        config = HostingConfig(service="calc", instance="calc-2", registry_url=url)
        async with registered(config, _registration("http://127.0.0.1:9/mcp")) as r:
            assert r is not None
            await r.wait_registered()
            assert (await registry.get("/v1/services/calc/instances/calc-2")).status_code == 200
        assert (await registry.get("/v1/services/calc/instances/calc-2")).status_code == 404
