"""``meshgate mcp-stdio`` and ``meshgate claude-config`` through real parts.

The bridge runs as a subprocess (``python -m meshgate mcp-stdio``), driven by the mcp
SDK's stdio client, against a real mesh whose gateway serves ``/mcp`` on a loopback
port; ``mcp-remote`` (npm), the bridge Claude Desktop users run otherwise, is driven
the same way when ``make peers`` installed it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from gateway.app import GatewaySettings
from gateway.security.settings import AuthSettings
from mcp_servers.knowledge import create_server as create_knowledge
from meshgate.cli import main
from meshgate.commands.claude_config import claude_config
from meshgate.commands.mcp_stdio import endpoint, resolve_key
from tests.gateway.mcp.mesh import McpMesh, gateway_with_mcp, listed, running_mcp_mesh, tool_server
from tests.support.external import TOOLS
from tests.support.live import serve
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"calc__evaluate", "calc__statistics", "knowledge__search", "calculator__calculate"}
KEY = "k-bridge-0123456789abcdef"

# `python -m meshgate mcp-stdio` once cli.py registers the command; until then the same
# group with the command added, in its own process.
if "mcp-stdio" in main.commands:
    BRIDGE = [sys.executable, "-m", "meshgate", "--log-json", "mcp-stdio"]
else:  # pragma: no cover - before the command is registered
    BRIDGE = [
        sys.executable,
        "-c",
        "from meshgate.cli import main; from meshgate.commands.mcp_stdio import mcp_stdio; "
        "main.add_command(mcp_stdio); main()",
        "--log-json",
        "mcp-stdio",
    ]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[McpMesh]:
    async with running_mcp_mesh() as mesh:
        await listed(mesh, EXPECTED)
        yield mesh


@contextlib.contextmanager
def stderr_file() -> Any:
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        yield errlog


def bridge(gateway: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=BRIDGE[0], args=[*BRIDGE[1:], "--gateway", gateway], env=env, cwd=str(ROOT)
    )


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_bridge_lists_and_calls_the_mesh(mesh: McpMesh, mode: Any) -> None:
    with stderr_file() as errlog:
        transport = stdio_client(bridge(mesh.urls["gateway"]), errlog=errlog)
        async with Client(transport, mode=mode, cache=None) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool("calc__evaluate", {"expression": "17*23"})
            answer = await client.call_tool("calculator__calculate", {"text": "What is 2**10?"})
            with pytest.raises(MCPError) as caught:
                await client.call_tool("nope__nothing", {})
    assert set(tools) >= EXPECTED
    assert tools["calc__evaluate"].input_schema["required"] == ["expression"]
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["value"] == 391
    assert "1024" in text_of(answer)
    assert caught.value.error.code == types.INVALID_PARAMS


async def test_the_bridge_relays_list_changed(mesh: McpMesh) -> None:
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    transport = stdio_client(bridge(mesh.urls["gateway"]))
    async with Client(transport, mode="legacy", cache=None, message_handler=on_message) as client:

        async def names() -> set[str]:
            return {t.name for t in (await client.list_tools()).tools}

        await names()  # the session (and its GET stream) is up
        async with tool_server("notes", create_knowledge, mesh.registry_url):
            await eventually(names, lambda n: "notes__search" in n, within=10)
            with anyio.fail_after(5):
                await heard.wait()


@contextlib.asynccontextmanager
async def keyed_gateway(mesh: McpMesh) -> AsyncIterator[str]:
    """A second gateway on the same registry that requires ``KEY``."""
    settings = GatewaySettings(
        registry_url=mesh.registry_url, watch_wait=5, auth=AuthSettings(api_keys=(KEY,))
    )
    app, _, _ = gateway_with_mcp(settings, mesh.http)
    async with serve(app) as url:
        yield url


async def test_the_key_goes_to_the_gateway_and_nowhere_else(mesh: McpMesh) -> None:
    async with keyed_gateway(mesh) as url:
        with stderr_file() as errlog:
            env = {"MESHGATE_GATEWAY_API_KEY": KEY, "MESHGATE_LOG_LEVEL": "debug"}
            transport = stdio_client(bridge(url, env), errlog=errlog)
            async with Client(transport, mode="legacy", cache=None) as client:

                async def names() -> set[str]:
                    return {t.name for t in (await client.list_tools()).tools}

                await eventually(names, EXPECTED.issubset, within=15)
                result = await client.call_tool("calc__evaluate", {"expression": "17*23"})
            errlog.seek(0)
            logged = errlog.read()
        assert result.structured_content is not None
        assert result.structured_content["value"] == 391
        assert logged  # debug logging was on, on stderr
        assert KEY not in logged

        with stderr_file() as errlog:  # no key: the gateway's 401 reaches the client
            transport = stdio_client(bridge(url), errlog=errlog)
            with pytest.raises(BaseException) as refused, anyio.fail_after(20):  # noqa: PT011
                async with Client(transport, mode="legacy", cache=None) as client:
                    await client.list_tools()
        errors = list(leaves(refused.value))
        assert any(isinstance(e, MCPError) and e.error.code == -31401 for e in errors), errors


def leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from leaves(inner)
    else:
        yield error


async def test_the_bridge_exits_when_stdin_closes(mesh: McpMesh) -> None:
    command = [*BRIDGE, "--gateway", mesh.urls["gateway"]]
    with stderr_file() as errlog:
        async with await anyio.open_process(command, cwd=ROOT, stderr=errlog) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            request = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            await process.stdin.send(json.dumps(request).encode() + b"\n")
            await process.stdin.aclose()
            with anyio.fail_after(15):
                out = b"".join([chunk async for chunk in process.stdout])
                code = await process.wait()
    assert code == 0
    # stdout carries protocol lines only (here at most the ping's answer).
    for line in out.decode().splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"


def mcp_remote() -> list[str]:
    node = shutil.which("node")
    script = TOOLS / "node" / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
    if node is None or not script.exists():
        pytest.skip("node or mcp-remote is missing: run `make peers` (needs npm)")
    return [node, str(script)]


async def test_mcp_remote_bridges_to_the_gateway(mesh: McpMesh, tmp_path: Path) -> None:
    node, script = mcp_remote()
    params = StdioServerParameters(
        command=node,
        args=[script, mesh.mcp, "--transport", "http-only", "--allow-http"],
        env={"MCP_REMOTE_CONFIG_DIR": str(tmp_path)},
    )
    with stderr_file() as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("calc__evaluate", {"expression": "17*23"})
    assert tools >= EXPECTED
    assert result.structured_content is not None
    assert result.structured_content["value"] == 391


def test_claude_config_prints_the_entry_without_a_key() -> None:
    runner = CliRunner()
    plain = runner.invoke(claude_config, ["--gateway", "http://127.0.0.1:8080/"])
    assert plain.exit_code == 0, plain.output
    server = json.loads(plain.stdout)["mcpServers"]["meshgate"]
    assert Path(server["command"]).is_absolute()
    assert Path(server["command"]).name.startswith("meshgate")
    assert server["args"] == ["mcp-stdio", "--gateway", "http://127.0.0.1:8080"]
    assert "env" not in server
    assert "claude_desktop_config.json" in plain.stderr
    assert "Library/Application Support/Claude" in plain.stderr
    assert "%APPDATA%" in plain.stderr

    keyed = runner.invoke(
        claude_config,
        ["--api-key-env", "MESH_KEY"],
        env={"MESH_KEY": KEY, "MESHGATE_GATEWAY_API_KEY": KEY},
    )
    assert keyed.exit_code == 0, keyed.output
    assert KEY not in keyed.stdout
    assert KEY not in keyed.stderr
    entry = json.loads(keyed.stdout)["mcpServers"]["meshgate"]
    assert entry["env"] == {"MESHGATE_GATEWAY_API_KEY": "${MESH_KEY}"}

    bad = runner.invoke(claude_config, ["--api-key-env", "not a name"])
    assert bad.exit_code == 2


def test_key_references_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_KEY", KEY)
    assert resolve_key("${MESH_KEY}") == KEY
    assert resolve_key("literal") == "literal"
    assert resolve_key("") is None
    monkeypatch.delenv("MESH_KEY")
    with pytest.raises(Exception, match=r"\$MESH_KEY"):
        resolve_key("${MESH_KEY}")
    assert endpoint("http://127.0.0.1:1/") == "http://127.0.0.1:1/mcp"
    assert endpoint("http://127.0.0.1:1/mcp") == "http://127.0.0.1:1/mcp"
