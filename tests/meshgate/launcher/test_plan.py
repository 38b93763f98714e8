"""From a mesh file to processes: names, ports, command lines; taken ports refused up front."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgate.cli import main
from meshgate.launcher import (
    LaunchOptions,
    PortAllocator,
    PortInUseError,
    accepts_connections,
    default_mesh_text,
    parse_mesh,
    plan_mesh,
    port_in_use,
)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def auto_mesh(gateway_port: str = '"auto"') -> str:
    return (
        '[[component]]\nkind = "registry"\nport = "auto"\n'
        f'[[component]]\nkind = "gateway"\nport = {gateway_port}\n'
        '[[component]]\nkind = "mcp-server"\nname = "calc"\n'
    )


def test_the_reference_mesh_plans_nine_processes_in_start_order(tmp_path: Path) -> None:
    # The built-in mesh's fixed ports may be taken on a test machine: plan it on auto ports.
    mesh = parse_mesh(_without_fixed_ports(default_mesh_text()))
    processes = plan_mesh(mesh, LaunchOptions(data_dir=tmp_path, python="py"))
    names = [p.name for p in processes]
    assert names == [
        "registry",
        "gateway",
        "knowledge",
        "calc",
        "planner",
        "researcher-1",
        "researcher-2",
        "summarizer",
        "calculator",
    ]
    assert [p.stage for p in processes] == [0, 1, 2, 2, 3, 3, 3, 3, 3]
    assert [p.start_stage for p in processes] == [0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert len({p.port for p in processes}) == 9
    registry, gateway, knowledge, *_ = processes
    assert registry.argv[:6] == ("py", "-m", "meshgate", "--log-json", "--log-level", "info")
    assert registry.argv[6:] == (
        *("registry", "--host", "127.0.0.1", "--port", str(registry.port)),
        *("--data", str(tmp_path / "registry.db"), "--allow-cidr", "127.0.0.0/8", "--grace", "1"),
    )
    assert gateway.argv[6:] == (
        *("gateway", "--host", "127.0.0.1", "--port", str(gateway.port)),
        *("--registry", registry.url),
    )
    assert knowledge.argv[6:8] == ("mcp-server", "knowledge")
    assert ("--registry", registry.url) == knowledge.argv[12:14]
    researcher = processes[5]
    assert researcher.component == "researcher"
    assert researcher.argv[6:8] == ("agent", "researcher")
    assert "--gateway" in researcher.argv
    assert researcher.argv[researcher.argv.index("--gateway") + 1] == gateway.url
    assert researcher.argv[researcher.argv.index("--data") + 1] == str(tmp_path / "agents")


def _without_fixed_ports(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("port ="))


def test_own_modules_are_served_under_their_component_name(tmp_path: Path) -> None:
    text = auto_mesh() + (
        '[[component]]\nkind = "agent"\nname = "mine"\nmodule = "pkg.mod:agent"\n'
        'args = ["--grace", "0"]\nenv = { X = "1" }\n'
    )
    options = LaunchOptions(data_dir=tmp_path, log_json=False, log_level="warning")
    *_, agent = plan_mesh(parse_mesh(text), options)
    assert agent.argv[3:8] == ("--log-human", "--log-level", "warning", "agent", "pkg.mod:agent")
    assert agent.argv[-4:] == ("--service", "mine", "--grace", "0")
    assert agent.env == {"X": "1"}


def test_the_gateway_port_option_overrides_the_file(tmp_path: Path) -> None:
    free = PortAllocator().allocate()
    processes = plan_mesh(parse_mesh(auto_mesh()), LaunchOptions(tmp_path, gateway_port=free))
    assert processes[1].port == free
    assert processes[1].url == f"http://127.0.0.1:{free}"


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path, listener: int) -> None:
    assert port_in_use(listener)
    assert accepts_connections(listener)
    with pytest.raises(PortInUseError) as caught:
        plan_mesh(parse_mesh(auto_mesh(str(listener))), LaunchOptions(tmp_path))
    assert caught.value.taken == [("gateway", listener)]
    assert str(caught.value) == f"port already in use: {listener} (gateway)"


def test_a_free_port_is_not_in_use() -> None:
    port = PortAllocator().allocate()
    assert not port_in_use(port)
    assert not accepts_connections(port)


def test_the_allocator_never_hands_out_a_reserved_or_repeated_port() -> None:
    first = PortAllocator().allocate()
    allocator = PortAllocator({first})
    ports = [allocator.allocate() for _ in range(20)]
    assert first not in ports
    assert len(set(ports)) == 20


def test_up_names_the_taken_port_and_what_to_do(
    tmp_path: Path, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mesh.toml").write_text(auto_mesh(str(listener)))
    result = CliRunner().invoke(main, ["up"])
    assert result.exit_code == 1
    assert f"port already in use: {listener} (gateway)" in result.output
    assert f"stop the process listening there, or run `meshgate up --port {listener + 1}`" in (
        result.output
    )
    assert not (tmp_path / ".meshgate").exists()  # nothing started, nothing written


def test_up_says_how_to_free_another_components_port(
    tmp_path: Path, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = auto_mesh().replace(
        'kind = "registry"\nport = "auto"', f'kind = "registry"\nport = {listener}'
    )
    (tmp_path / "mesh.toml").write_text(text)
    result = CliRunner().invoke(main, ["up"])
    assert result.exit_code == 1
    assert f"{listener} (registry): stop the process listening there, or set port" in result.output


def test_up_refuses_a_data_directory_it_cannot_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mesh.toml").write_text(auto_mesh())
    (tmp_path / "taken").write_text("a file, not a directory")
    result = CliRunner().invoke(main, ["up", "--data", "taken/data"])
    assert result.exit_code == 1
    assert "cannot use taken/data as the data directory" in result.output
