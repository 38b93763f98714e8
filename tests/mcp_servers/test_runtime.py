"""The tool-server runtime: both MCP eras at /mcp, ops routes, self-registration."""

from __future__ import annotations

import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_servers.calc import create_server as create_calc
from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings
from mcp_servers.knowledge import create_server as create_knowledge
from mcp_servers.runtime import REFERENCE_SERVERS, build_tool_server_app, load_tool_server
from registry.models import CheckSpec
from tests.mcp_servers.support import call, in_process, modern, running_tool_server
from tests.registry.server.conftest import running_registry
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


# -- serving ------------------------------------------------------------------


async def test_stateless_era_lists_and_calls_tools() -> None:
    app = build_tool_server_app(create_calc(), HostingConfig(service="calc"))
    async with in_process(app) as client:
        listed = await modern(client, "tools/list")
        assert listed.status_code == 200
        assert "mcp-session-id" not in listed.headers
        tools = {t["name"]: t for t in listed.json()["result"]["tools"]}
        assert set(tools) == {"evaluate", "statistics"}
        assert tools["evaluate"]["annotations"] == {
            "readOnlyHint": True,
            "idempotentHint": True,
            "openWorldHint": False,
        }
        assert tools["evaluate"]["outputSchema"]["required"] == ["expression", "value", "text"]
        result = await call(client, "evaluate", expression="17*23")
        assert result["structuredContent"]["value"] == 391


async def test_handshake_era_with_a_session_and_the_modern_sdk_client() -> None:
    async with running_tool_server("calc") as (url, _):
        async with Client(f"{url}/mcp", mode="legacy", cache=None) as legacy:
            assert legacy.session.protocol_version < "2026"
            tools = await legacy.list_tools()
            assert {t.name for t in tools.tools} == {"evaluate", "statistics"}
            result = await legacy.call_tool("evaluate", {"expression": "2**10"})
            assert result.structured_content == {
                "expression": "2**10",
                "value": 1024,
                "text": "1024",
            }
        async with Client(f"{url}/mcp", mode="2026-07-28", cache=None) as current:
            result = await current.call_tool("statistics", {"numbers": [1, 2, 3]})
            assert result.structured_content is not None
            assert result.structured_content["mean"] == 2.0


async def test_ops_routes_and_request_metrics() -> None:
    app = build_tool_server_app(create_calc(), HostingConfig(service="calc"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        # Before the lifespan has run the session manager: alive, not ready.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
    async with in_process(app) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        await modern(client, "tools/list")
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'meshgate_http_requests_total{method="POST",route="/mcp",status="200"} 1.0' in text
        assert 'meshgate_http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in text
        assert (await client.get("/nowhere")).status_code == 404
        text = (await client.get("/metrics")).text
        assert 'route="unmatched",status="404"' in text


async def test_a_host_outside_the_allowed_list_is_refused() -> None:
    settings = McpHttpSettings(
        allowed_hosts=("calc:8000",), allowed_origins=("https://ui.example",)
    )
    app = build_tool_server_app(create_calc(), HostingConfig(service="calc"), settings)
    async with in_process(app, host="evil.example:8000") as client:
        refused = await modern(client, "tools/list")
        assert refused.status_code == 421
        for host in ("calc:8000", "localhost:1234", "127.0.0.1:9"):
            admitted = await modern(client, "tools/list", headers={"Host": host})
            assert admitted.status_code == 200, host
        origin = await modern(
            client, "tools/list", headers={"Host": "calc:8000", "Origin": "https://evil.example"}
        )
        assert origin.status_code == 403
        good = await modern(
            client, "tools/list", headers={"Host": "calc:8000", "Origin": "https://ui.example"}
        )
        assert good.status_code == 200
        # The ops routes are not MCP: no Host check there (probes use pod IPs).
        assert (await client.get("/healthz")).status_code == 200


async def test_the_public_url_host_is_admitted() -> None:
    config = HostingConfig(service="calc", public_url="http://calc.mesh:8080")
    app = build_tool_server_app(create_calc(), config)
    async with in_process(app, host="calc.mesh:8080") as client:
        assert (await modern(client, "tools/list")).status_code == 200
        assert (
            await modern(client, "tools/list", headers={"Host": "other:8080"})
        ).status_code == 421


# -- self-registration ----------------------------------------------------------


async def test_registers_passes_the_active_probe_and_deregisters() -> None:
    check = CheckSpec(ttl_seconds=5, interval_seconds=0.2, timeout_seconds=2)
    async with running_registry() as registry:
        path = "/v1/services/knowledge/instances/knowledge-t1"

        async def record() -> httpx.Response:
            return await registry.get(path)

        async with running_tool_server(
            "knowledge",
            registry_url="http://registry",
            http=registry,
            check=check,
            instance="knowledge-t1",
        ) as (url, app):
            answer = await eventually(
                record,
                lambda r: (
                    r.status_code == 200
                    and r.json()["health"] == "passing"
                    and any(
                        c["name"] == "probe" and c["status"] == "passing"
                        for c in r.json()["checks"]
                    )
                ),
            )
            instance = answer.json()
            assert instance["kind"] == "mcp-server"
            assert instance["url"] == f"{url}/mcp"
            probe = next(c for c in instance["checks"] if c["name"] == "probe")
            assert "tools/list answered: 2 tools" in probe["output"]
            tools = {t["name"]: t for t in instance["tools"]}
            assert set(tools) == {"search", "get_topic"}
            assert tools["search"]["annotations"]["readOnlyHint"] is True
            assert tools["search"]["outputSchema"]["type"] == "object"
            assert tools["get_topic"]["inputSchema"]["required"] == ["name"]
            registration = app.state.registration
            assert (await registration.wait_registered()).key == ("knowledge", "knowledge-t1")
        gone = await registry.get(path)
        assert gone.status_code == 404


async def test_without_a_registry_nothing_registers() -> None:
    app = build_tool_server_app(create_calc(), HostingConfig(service="calc"))
    async with in_process(app) as client:
        assert app.state.registration is None
        assert (await client.get("/readyz")).status_code == 200


# -- loading --------------------------------------------------------------------


def test_load_reference_servers_by_name() -> None:
    assert set(REFERENCE_SERVERS) == {"knowledge", "calc"}
    assert load_tool_server("knowledge").name == "knowledge"
    assert load_tool_server("calc").name == "calc"


def test_load_by_import_path_object_or_factory() -> None:
    factory = load_tool_server("mcp_servers.calc:create_server")
    assert isinstance(factory, MCPServer)
    assert load_tool_server("tests.mcp_servers.test_runtime:SERVER") is SERVER


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nothing", "neither a reference server"),
        ("no_such_module_xyz:thing", "cannot import"),
        ("mcp_servers.calc:nope", "has no attribute"),
        ("tests.mcp_servers.test_runtime:NOT_A_SERVER", "not an MCPServer"),
    ],
)
def test_load_refuses_what_is_not_a_server(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_tool_server(spec)


SERVER = create_knowledge()
NOT_A_SERVER = 42
