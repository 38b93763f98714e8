"""Registrations are checked at the door, every bad field named at once."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from registry.errors import InvalidRequest
from registry.models import Kind, Registration
from registry.ssrf import UrlPolicy
from registry.validation import Limits, parse_agent_card, validate_name, validate_registration

pytestmark = pytest.mark.anyio

CARD: dict[str, Any] = {
    "name": "Researcher",
    "description": "Searches Python docs",
    "version": "1.0.0",
    "supportedInterfaces": [
        {"url": "http://127.0.0.1:9001/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ],
    "capabilities": {"streaming": True},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "search", "name": "Search", "description": "BM25 search", "tags": ["docs"]}],
}
TOOLS: list[dict[str, Any]] = [
    {"name": "search_docs", "description": "BM25", "inputSchema": {"type": "object"}},
    {"name": "fetch.page"},
]
LOOPBACK = UrlPolicy.loopback()


async def no_dns(host: str, port: int) -> list[str]:
    return {"example.com": ["93.184.215.14"]}.get(host, [])


def card(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(CARD)
    result.update(changes)
    return result


def agent(**fields: Any) -> Registration:
    fields.setdefault("card", card())
    fields.setdefault("url", "http://127.0.0.1:9001/")
    return Registration(kind=Kind.A2A_AGENT, **fields)


def tool_server(**fields: Any) -> Registration:
    return Registration(kind=Kind.MCP_SERVER, url="http://127.0.0.1:9100/mcp", **fields)


async def refusal(
    reg: Registration,
    *,
    service: str = "researcher",
    instance: str = "researcher-1",
    policy: UrlPolicy = LOOPBACK,
    limits: Limits | None = None,
) -> dict[str, str]:
    """The field -> message map of the InvalidRequest the registration gets."""
    with pytest.raises(InvalidRequest) as caught:
        await validate_registration(
            service, instance, reg, policy, limits=limits or Limits(), resolver=no_dns
        )
    return {e.field: e.message for e in caught.value.errors}


async def test_a_valid_agent_passes_with_its_url_normalised() -> None:
    reg = agent(url="HTTP://LOCALHOST:9001/")
    result = await validate_registration("researcher", "r-1", reg, LOOPBACK, resolver=no_dns)
    assert result.url == "http://localhost:9001/"
    assert result.card == CARD


async def test_a_valid_tool_server_passes() -> None:
    reg = tool_server(tools=TOOLS)
    result = await validate_registration("docs", "docs-1", reg, LOOPBACK, resolver=no_dns)
    assert result == reg


async def test_a_tool_server_without_tools_passes() -> None:
    await validate_registration("docs", "docs-1", tool_server(), LOOPBACK, resolver=no_dns)


@pytest.mark.parametrize(
    "name", ["", "Researcher", "re_searcher", "-researcher", "researcher-", "a" * 64, "r\u00e9"]
)
def test_names_that_are_not_dns_labels_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_name(name, "service")
    assert [e.field for e in caught.value.errors] == ["service"]


@pytest.mark.parametrize("name", ["a", "researcher", "researcher-7f3a", "0", "a" * 63])
def test_dns_labels_are_valid_names(name: str) -> None:
    assert validate_name(name, "instance") == name


async def test_bad_service_and_instance_names_are_both_named() -> None:
    errors = await refusal(agent(), service="Bad_Name", instance="also bad")
    assert set(errors) == {"service", "instance"}


async def test_the_url_must_pass_the_ssrf_policy() -> None:
    errors = await refusal(agent(url="http://169.254.169.254/"))
    assert "metadata" in errors["url"]


async def test_an_agent_without_a_card_is_refused() -> None:
    errors = await refusal(agent(card=None))
    assert set(errors) == {"card"}


async def test_a_03_style_card_with_url_is_refused() -> None:
    errors = await refusal(agent(card=card(url="http://127.0.0.1:9001/")))
    assert "0.3" in errors["card.url"]


async def test_unknown_card_fields_are_refused_by_path() -> None:
    interfaces = [dict(CARD["supportedInterfaces"][0], transport="JSONRPC")]
    errors = await refusal(agent(card=card(supportedInterfaces=interfaces)))
    assert set(errors) == {"card.supportedInterfaces[0].transport"}


async def test_card_fields_of_the_wrong_type_are_refused_by_path() -> None:
    errors = await refusal(agent(card=card(capabilities={"streaming": "yes"})))
    assert set(errors) == {"card.capabilities.streaming"}


async def test_wrong_types_inside_card_lists_are_refused_by_path() -> None:
    errors = await refusal(agent(card=card(skills=[{"id": 1}])))
    assert set(errors) == {"card.skills.id"}


async def test_a_card_missing_required_fields_names_each_field() -> None:
    incomplete = card(supportedInterfaces=[{"url": "http://127.0.0.1:9001/"}])
    for field in ("name", "version", "skills"):
        del incomplete[field]
    errors = await refusal(agent(card=incomplete))
    assert set(errors) == {
        "card.name",
        "card.version",
        "card.skills",
        "card.supportedInterfaces[0].protocolBinding",
        "card.supportedInterfaces[0].protocolVersion",
    }


def test_parse_agent_card_returns_the_sdk_type() -> None:
    parsed = parse_agent_card(CARD)
    assert parsed.name == "Researcher"
    assert parsed.supported_interfaces[0].protocol_binding == "JSONRPC"
    assert parsed.capabilities.streaming


async def test_an_oversize_card_is_refused() -> None:
    big = card(description="x" * 300_000)
    errors = await refusal(agent(card=big))
    assert "262144" in errors["card"]


async def test_the_card_limit_is_configurable() -> None:
    errors = await refusal(agent(), limits=Limits(max_card_bytes=100))
    assert set(errors) == {"card"}


async def test_a_card_interface_url_must_pass_the_ssrf_policy() -> None:
    interfaces = [
        CARD["supportedInterfaces"][0],
        {"url": "http://10.0.0.1/", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
    ]
    errors = await refusal(agent(card=card(supportedInterfaces=interfaces)))
    assert set(errors) == {"card.supportedInterfaces[1].url"}
    assert "private" in errors["card.supportedInterfaces[1].url"]


async def test_an_mcp_server_with_a_card_is_refused() -> None:
    errors = await refusal(tool_server(card=card()))
    assert set(errors) == {"card"}


async def test_an_agent_may_list_the_tools_it_serves_over_mcp() -> None:
    reg = agent(tools=TOOLS)
    result = await validate_registration("researcher", "r-1", reg, LOOPBACK, resolver=no_dns)
    assert result.tools == TOOLS


async def test_an_agents_tools_are_checked_like_a_tool_servers() -> None:
    errors = await refusal(agent(tools=[{"name": "bad name!"}]))
    assert set(errors) == {"tools[0].name"}


async def test_malformed_tools_are_named_by_index() -> None:
    tools: list[dict[str, Any]] = [
        {"name": "ok"},
        {"description": "no name"},
        {"name": "has space"},
        {"name": 7},
        {"name": "x" * 129},
        {"name": "schema", "inputSchema": "object"},
        {"name": "ok"},
    ]
    errors = await refusal(tool_server(tools=tools))
    assert set(errors) == {
        "tools[1].name",
        "tools[2].name",
        "tools[3].name",
        "tools[4].name",
        "tools[5].inputSchema",
        "tools[6].name",
    }
    assert "duplicate" in errors["tools[6].name"]


async def test_tools_that_are_not_objects_are_refused() -> None:
    # Pydantic already insists on objects; a record built without it must not slip by.
    not_objects: list[Any] = ["search"]
    reg = Registration.model_construct(
        kind=Kind.MCP_SERVER, url="http://127.0.0.1:9100/mcp", card=None, tools=not_objects
    )
    errors = await refusal(reg)
    assert set(errors) == {"tools[0]"}


async def test_an_oversize_tool_list_is_refused() -> None:
    errors = await refusal(tool_server(tools=TOOLS), limits=Limits(max_tools_bytes=50))
    assert set(errors) == {"tools"}


async def test_every_problem_is_reported_at_once() -> None:
    reg = agent(url="http://10.0.0.1/", card=card(url="http://x/"))
    errors = await refusal(reg, service="BAD")
    assert set(errors) == {"service", "url", "card.url"}


async def test_the_policy_decides_what_is_private() -> None:
    reg = agent(url="http://10.0.0.1:9001/")
    await refusal(reg)
    await validate_registration(
        "researcher", "r-1", reg, UrlPolicy(allow_private=True), resolver=no_dns
    )
