"""``meshgate status | agents | tools | call`` against a real mesh on loopback.

The mesh (registry, calc and knowledge tool servers, the calculator agent and the
gateway) serves on this test's event loop; each command runs as the CLI does, in
a worker thread with its own event loop, talking HTTP to those sockets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from gateway.app import GatewaySettings
from gateway.security import AuthSettings
from meshgate.cli import main
from tests.gateway.mcp.mesh import McpMesh, gateway_with_mcp, listed, running_mcp_mesh
from tests.support.live import free_port, serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[McpMesh]:
    async with running_mcp_mesh() as mesh:

        async def passing() -> set[str]:
            found = await mesh.registry.all_instances()
            return {i.service for i in found.value if i.health.value == "passing"}

        await eventually(passing, {"calc", "knowledge", "calculator"}.issubset, within=15)
        await listed(mesh, {"calculator__calculate"})
        yield mesh


async def meshgate(mesh: McpMesh | None, *args: str, **env: str) -> Result:
    """``meshgate ARGS`` pointed at ``mesh`` (or at ports where nothing listens)."""
    if mesh is None:
        where = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    else:
        where = [mesh.urls["gateway"], mesh.registry_url]
    environment = {"MESHGATE_GATEWAY_URL": where[0], "MESHGATE_REGISTRY_URL": where[1], **env}
    runner = CliRunner()

    def invoke() -> Result:
        return runner.invoke(main, list(args), env=environment, catch_exceptions=False)

    return await anyio.to_thread.run_sync(invoke)


async def test_status_shows_both_components_ready_and_every_instance_passing(
    mesh: McpMesh,
) -> None:
    result = await meshgate(mesh, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["registry", mesh.registry_url, "ready"]
    assert lines[1].split()[:3] == ["gateway", mesh.urls["gateway"], "ready"]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert rows["calc"][2:4] == ["mcp-server", "passing"]
    assert rows["calculator"][2:4] == ["a2a-agent", "passing"]
    assert rows["calculator"][4].rstrip("/") == mesh.urls["calculator"].rstrip("/")


async def test_status_json_lists_instances_with_skills_and_tools(mesh: McpMesh) -> None:
    result = await meshgate(mesh, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["gateway"]["state"] == "ready"
    by_service = {i["service"]: i for i in report["instances"]}
    assert "calculate" in by_service["calculator"]["skills"]
    assert "evaluate" in by_service["calc"]["tools"]


async def test_status_of_a_mesh_that_is_down_says_so_and_exits_1() -> None:
    result = await meshgate(None, "status")
    assert result.exit_code == 1
    assert "registry" in result.output
    assert "unreachable" in result.output
    assert "Traceback" not in result.output


async def test_agents_lists_routable_agents_with_skills(mesh: McpMesh) -> None:
    result = await meshgate(mesh, "agents")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:3] == ["AGENT", "UP", "SKILLS"]
    calculator = next(r for r in rows if r.startswith("calculator "))
    assert calculator.split()[1] == "1/1"
    assert "calculate" in calculator
    listed = json.loads((await meshgate(mesh, "agents", "--json", "--skill", "calculate")).output)
    assert [a["name"] for a in listed] == ["calculator"]
    assert listed[0]["url"] == mesh.urls["gateway"] + "/a2a/calculator/"
    none = await meshgate(mesh, "agents", "--skill", "poetry")
    assert none.output.strip() == "no routable agent offers 'poetry'"


async def test_tools_lists_the_namespaced_tools_the_gateway_serves(mesh: McpMesh) -> None:
    result = await meshgate(mesh, "tools")
    assert result.exit_code == 0, result.output
    names = {line.split()[0] for line in result.output.splitlines()[1:] if line.strip()}
    assert {"calc__evaluate", "calculator__calculate", "meshgate__delegate"} <= names
    listed: list[dict[str, Any]] = json.loads((await meshgate(mesh, "tools", "--json")).output)
    evaluate = next(t for t in listed if t["name"] == "calc__evaluate")
    assert evaluate["inputSchema"]["required"] == ["expression"]
    assert evaluate["annotations"]["readOnlyHint"] is True


async def test_call_answers_the_agent_result_and_exits_0(mesh: McpMesh) -> None:
    result = await meshgate(mesh, "call", "calculator", "What is 17*23?")
    assert result.exit_code == 0, result.output
    assert "391" in result.stdout
    assert "completed in" in result.stderr


async def test_call_by_skill_and_streamed(mesh: McpMesh) -> None:
    result = await meshgate(mesh, "call", "--skill", "calculate", "What is 2**10?", "--stream")
    assert result.exit_code == 0, result.output
    assert "→ calculator" in result.stderr
    assert "1024" in result.stdout
    answer = json.loads((await meshgate(mesh, "call", "calculator", "6*7", "--json")).stdout)
    assert answer["state"] == "completed"
    assert answer["data"]["value"] == 42


async def test_call_of_an_unknown_agent_or_skill_fails_clearly(mesh: McpMesh) -> None:
    nobody = await meshgate(mesh, "call", "nobody", "hello")
    assert nobody.exit_code == 1
    assert "nobody" in nobody.output
    assert "Traceback" not in nobody.output
    no_skill = await meshgate(mesh, "call", "--skill", "poetry", "hello")
    assert no_skill.exit_code == 1
    assert "no routable agent offers the skill 'poetry'" in no_skill.output
    usage = await meshgate(mesh, "call", "only-an-agent")
    assert usage.exit_code == 2
    assert "give AGENT and MESSAGE" in usage.output


async def test_a_gateway_with_auth_needs_the_key_and_says_how_to_give_it(
    mesh: McpMesh,
) -> None:
    settings = GatewaySettings(
        registry_url=mesh.registry_url, watch_wait=5, auth=AuthSettings(api_keys=("s3cret-key",))
    )
    host, _, _ = gateway_with_mcp(settings, mesh.http)
    async with serve(host) as url:
        env = {"MESHGATE_GATEWAY_URL": url}
        refused = await meshgate(mesh, "agents", **env)
        assert refused.exit_code == 1
        assert "HTTP 401" in refused.output
        assert "--api-key" in refused.output
        assert "s3cret-key" not in refused.output

        async def listed() -> Result:
            return await meshgate(
                mesh, "agents", "--json", **env, MESHGATE_GATEWAY_API_KEY="s3cret-key"
            )

        allowed = await eventually(listed, lambda r: "calculator" in r.output, within=10)
        assert allowed.exit_code == 0
        tools = await meshgate(mesh, "tools", **env, MESHGATE_GATEWAY_API_KEY="s3cret-key")
        assert "calc__evaluate" in tools.output
