"""Tool policies: globs per principal, deny over allow, the TOML file and its flag."""

from __future__ import annotations

from pathlib import Path

import httpx2
import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.mcp.policy import (
    PolicyError,
    ToolPolicy,
    ToolRule,
    load_tool_policy,
    parse_tool_policy,
    request_principal,
)
from gateway.security import ANONYMOUS, Authenticator, AuthSettings, Principal
from meshgate.cli import main
from meshgate.commands.gateway import split_named_keys
from tests.support.live import free_port
from tests.support.polling import eventually
from tests.support.processes import MeshProcess, processes

OPS = Principal("key:ops", "api-key")
ALICE = Principal("jwt:alice", "jwt")
NAMES = ("calc__evaluate", "calc__delete_history", "knowledge__search", "meshgate__delegate")

POLICY_TOML = """
[default]
deny = ["*__delete_*"]

[principals."key:ops"]
allow = ["*"]

[principals."jwt:alice"]
allow = ["calc__*", "knowledge__*"]
deny = ["calc__evaluate"]
"""


def test_no_rule_allows_everything() -> None:
    policy = ToolPolicy()
    assert all(policy.allows(p, n) for p in (None, OPS, ALICE) for n in NAMES)


def test_deny_wins_over_allow_and_a_principal_rule_replaces_the_default() -> None:
    policy = parse_tool_policy(
        {
            "default": {"deny": ["*__delete_*"]},
            "principals": {
                "key:ops": {"allow": ["*"]},
                "jwt:alice": {"allow": ["calc__*", "knowledge__*"], "deny": ["calc__evaluate"]},
            },
        }
    )
    assert policy.filter(None, NAMES) == [
        "calc__evaluate",
        "knowledge__search",
        "meshgate__delegate",
    ]
    assert policy.filter(ANONYMOUS, NAMES) == policy.filter(None, NAMES)
    assert policy.filter(OPS, NAMES) == list(NAMES)
    assert policy.filter(ALICE, NAMES) == ["calc__delete_history", "knowledge__search"]


def test_globs_match_whole_names_case_sensitively() -> None:
    rule = ToolRule(allow=("calc__*",))
    assert rule.allows("calc__evaluate")
    assert not rule.allows("xcalc__evaluate")
    assert not rule.allows("CALC__evaluate")
    assert ToolRule(allow=("calc__?val*",)).allows("calc__eval")
    assert not ToolRule(allow=()).allows("calc__evaluate")


def test_filters_tool_objects_keeping_their_order() -> None:
    tools = [types.Tool(name=n, input_schema={"type": "object"}) for n in NAMES]
    kept = ToolPolicy(default=ToolRule(deny=("calc__*",))).filter(OPS, tools)
    assert [t.name for t in kept] == ["knowledge__search", "meshgate__delegate"]


def test_the_principal_comes_from_the_request_scope() -> None:
    class Request:
        def __init__(self) -> None:
            self.scope = {"state": {"principal": OPS}}

    assert request_principal(Request()) is OPS
    assert request_principal({"state": {"principal": ALICE}}) is ALICE
    assert request_principal(None) is None
    assert request_principal({"state": {"principal": "key:ops"}}) is None


def test_loads_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    policy = load_tool_policy(path)
    assert policy.allows(ALICE, "knowledge__search")
    assert not policy.allows(ALICE, "calc__evaluate")
    assert not policy.allows(None, "calc__delete_history")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[default\n", "not valid TOML"),
        ("[defaults]\n", "unknown top-level keys ['defaults']"),
        ('[default]\nallow = "calc__*"\n', "default.allow must be a list"),
        ("[default]\nallow = ['']\n", "default.allow must be a list"),
        ("[default]\npermit = ['*']\n", "unknown keys ['permit']"),
        ('principals = ["key:ops"]\n', "principals must be tables"),
        ('[principals]\n"key:ops" = 3\n', 'principals."key:ops" must be a table'),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=r"policy\.toml") as raised:
        load_tool_policy(path)
    assert message in str(raised.value)


def test_the_gateway_command_refuses_a_bad_policy_file_without_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[default]\ndeny = 'x'\n")
    args = ["gateway", "--registry", "http://127.0.0.1:1", "--tool-policy"]
    result = CliRunner().invoke(main, [*args, str(path)])
    assert result.exit_code == 2
    assert "--tool-policy" in result.output
    assert "default.deny must be a list" in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(main, [*args, str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output


def test_named_keys_keep_plain_and_padded_keys_plain() -> None:
    plain, named = split_named_keys(("ops=s3cret", "plainkey", "YWJjZA==", "a b=c"))
    assert named == (("ops", "s3cret"),)
    assert plain == ("plainkey", "YWJjZA==", "a b=c")


@pytest.mark.anyio
async def test_a_named_key_authenticates_as_key_name() -> None:
    settings = AuthSettings(api_keys=("plain",), named_api_keys=(("ops", "s3cret"),))
    authenticator = Authenticator(settings)
    assert (await authenticator.authenticate([(b"x-api-key", b"s3cret")])).id == "key:ops"
    plain = await authenticator.authenticate([(b"x-api-key", b"plain")])
    assert plain.id.startswith("key:")
    assert "plain" not in plain.id
    with pytest.raises(ValueError, match="names"):
        AuthSettings(named_api_keys=(("a b", "k"),))
    assert AuthSettings(named_api_keys=(("ops", "k"),)).required


@pytest.mark.e2e
@pytest.mark.anyio
async def test_the_gateway_process_applies_its_policy_file_to_named_keys(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[default]\ndeny = ["*"]\n\n[principals."key:ops"]\nallow = ["calc__*"]\n')
    registry_port, calc_port, gateway_port = free_port(), free_port(), free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    registry_args = ["registry", "--port", str(registry_port), "--backend", "memory"]
    calc_args = ["mcp-server", "calc", "--port", str(calc_port), "--registry", registry_url]
    gateway_args = [
        *("gateway", "--port", str(gateway_port), "--registry", registry_url),
        *("--api-key", "ops=ops-secret-1", "--api-key", "plain-secret-2"),
        *("--tool-policy", str(policy)),
    ]
    with processes() as started:
        started.append(
            MeshProcess(
                "registry", [*registry_args, "--allow-cidr", "127.0.0.0/8"], registry_url, tmp_path
            )
        )
        started[0].wait_ready()
        started.append(MeshProcess("calc", calc_args, f"http://127.0.0.1:{calc_port}", tmp_path))
        started.append(MeshProcess("gateway", gateway_args, gateway_url, tmp_path))
        for process in started[1:]:
            process.wait_ready()

        async def names(key: str) -> set[str]:
            headers = {"authorization": f"Bearer {key}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=10, trust_env=False) as http,
                Client(
                    streamable_http_client(gateway_url + "/mcp", http_client=http),
                    mode="2026-07-28",
                    cache=None,
                ) as client,
            ):
                return {t.name for t in (await client.list_tools()).tools}

        ops = await eventually(lambda: names("ops-secret-1"), lambda n: bool(n), within=15)
        assert ops == {"calc__evaluate", "calc__statistics"}
        assert await names("plain-secret-2") == set()
        said = (tmp_path / "gateway.log").read_text()
        assert "unnamed API keys are callers key:" in said
        assert "plain-secret-2" not in said
