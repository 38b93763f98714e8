"""``mesh.toml``: a good file parses; each bad key gets an error that names it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgate.cli import main
from meshgate.launcher import Component, MeshSpecError, default_mesh_text, load_mesh, parse_mesh

GOOD = """
[[component]]
kind = "registry"
port = 8400

[[component]]
kind = "gateway"
port = "auto"

[[component]]
kind = "mcp-server"
name = "tools"
module = "my_pkg.tools:server"
env = { MESHGATE_LOG_LEVEL = "debug" }

[[component]]
kind = "agent"
name = "researcher"
replicas = 3
args = ["--grace", "1"]
ready_timeout = 5
"""

BASE = '[[component]]\nkind = "registry"\n[[component]]\nkind = "gateway"\n'


def test_a_good_file_gives_every_component_with_its_defaults() -> None:
    mesh = parse_mesh(GOOD)
    assert mesh.components == (
        Component("registry", "registry", port=8400),
        Component("gateway", "gateway"),
        Component(
            "mcp-server",
            "tools",
            module="my_pkg.tools:server",
            env={"MESHGATE_LOG_LEVEL": "debug"},
        ),
        Component("agent", "researcher", replicas=3, args=("--grace", "1"), ready_timeout=5.0),
    )
    assert mesh.components[2].target == "my_pkg.tools:server"
    assert mesh.components[3].target == "researcher"
    assert mesh.gateway.name == "gateway"


def test_the_built_in_mesh_is_the_reference_mesh() -> None:
    mesh = load_mesh(None)
    kinds = {c.name: (c.kind, c.replicas, c.port) for c in mesh.components}
    assert kinds == {
        "registry": ("registry", 1, 8400),
        "gateway": ("gateway", 1, 8080),
        "knowledge": ("mcp-server", 1, None),
        "calc": ("mcp-server", 1, None),
        "planner": ("agent", 1, None),
        "researcher": ("agent", 2, None),
        "summarizer": ("agent", 1, None),
        "calculator": ("agent", 1, None),
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[[component]]\nkind = "agent"\nname = "a"\nreplica = 2',
            "component[3]: unknown key 'replica'",
        ),
        ('[[component]]\nkind = "robot"', "component[3].kind: must be one of"),
        ('[[component]]\nkind = "agent"', "component[3] (agent).name: must be"),
        ('[[component]]\nkind = "agent"\nname = "a b"', "component[3] (agent).name"),
        (
            '[[component]]\nkind = "agent"\nname = "a"\nreplicas = 0',
            ".replicas: must be an integer",
        ),
        ('[[component]]\nkind = "agent"\nname = "a"\nreplicas = "2"', ".replicas: must be"),
        ('[[component]]\nkind = "agent"\nname = "a"\nreplicas = true', ".replicas: must be"),
        ('[[component]]\nkind = "agent"\nname = "a"\nport = 70000', ".port: must be a port number"),
        ('[[component]]\nkind = "agent"\nname = "a"\nport = "any"', ".port: must be a port number"),
        (
            '[[component]]\nkind = "agent"\nname = "a"\nreplicas = 2\nport = 9000',
            '.port: must be "auto"',
        ),
        ('[[component]]\nkind = "agent"\nname = "a"\nenv = { A = 1 }', ".env: must be a table"),
        ('[[component]]\nkind = "agent"\nname = "a"\nenv = ["A=1"]', ".env: must be a table"),
        (
            '[[component]]\nkind = "agent"\nname = "a"\nargs = "--x"',
            ".args: must be a list of strings",
        ),
        (
            '[[component]]\nkind = "agent"\nname = "a"\nmodule = "nocolon"',
            ".module: must look like",
        ),
        (
            '[[component]]\nkind = "agent"\nname = "a"\nmodule = 3',
            ".module: a 'package.module:attr'",
        ),
        ('[[component]]\nkind = "agent"\nname = "a"\nready_timeout = 0', ".ready_timeout: must be"),
        (
            '[[component]]\nkind = "registry"',
            "needs exactly one component of kind 'registry', has 2",
        ),
        ('[[component]]\nkind = "agent"\nname = "gateway"', "two components are named 'gateway'"),
        ("[mesh]\nname = 'x'", "unknown top-level key 'mesh'"),
        ("[[component]]\nkind = [", "not valid TOML"),
    ],
)
def test_each_bad_key_is_named_in_the_error(extra: str, message: str) -> None:
    with pytest.raises(MeshSpecError) as caught:
        parse_mesh(BASE + extra, "mesh.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("mesh.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[component]]\nkind = "gateway"',
            "needs exactly one component of kind 'registry', has 0",
        ),
        ('[[component]]\nkind = "registry"\nreplicas = 2', "registry).replicas: only"),
        ('[[component]]\nkind = "registry"\nmodule = "a:b"', "registry).module"),
        ("", "'component': expected one or more"),
        ('component = ["x"]', "component[1]: expected a table"),
        ("component = 3", "'component': expected one or more [[component]] tables"),
    ],
)
def test_mesh_level_rules(text: str, message: str) -> None:
    with pytest.raises(MeshSpecError) as caught:
        parse_mesh(text)
    assert message in str(caught.value)


def test_two_components_on_one_port_are_refused() -> None:
    text = BASE.replace('"registry"', '"registry"\nport = 9000') + "port = 9000\n"
    with pytest.raises(MeshSpecError, match="'registry' and 'gateway' both have port 9000"):
        parse_mesh(text)


def test_an_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(MeshSpecError, match=r"missing\.toml: cannot read"):
        load_mesh(tmp_path / "missing.toml")


def test_init_writes_the_built_in_mesh_which_parses_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert "wrote mesh.toml: edit it, then run `meshgate up`" in result.output
    assert (tmp_path / "mesh.toml").read_text() == default_mesh_text()
    assert load_mesh(tmp_path / "mesh.toml").components == load_mesh(None).components


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine.toml"
    target.write_text("# my edits\n")
    runner = CliRunner()
    refused = runner.invoke(main, ["init", "-f", str(target)])
    assert refused.exit_code == 1
    assert "already exists; `meshgate init --force` overwrites it" in refused.output
    assert target.read_text() == "# my edits\n"
    forced = runner.invoke(main, ["init", "-f", str(target), "--force"])
    assert forced.exit_code == 0
    assert f"meshgate up -f {target}" in forced.output
    assert parse_mesh(target.read_text()).components == load_mesh(None).components


def test_init_reports_an_unwritable_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", "-f", str(tmp_path / "no" / "such" / "m.toml")])
    assert result.exit_code == 1
    assert "cannot write" in result.output


def test_up_refuses_a_bad_mesh_file_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "mesh.toml"
    bad.write_text(BASE + '[[component]]\nkind = "agent"\nname = "a"\nreplicas = -1\n')
    result = CliRunner().invoke(main, ["up", "-f", str(bad)])
    assert result.exit_code == 1
    assert "component[3] (agent).replicas: must be an integer from 1 to 32, got -1" in result.output
