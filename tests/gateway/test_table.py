from __future__ import annotations

from typing import Any

from gateway.table import RouteTable
from registry.models import CheckSpec, Health, Instance, Kind


def agent(
    service: str,
    instance: str,
    port: int,
    *,
    health: Health = Health.PASSING,
    skills: tuple[str, ...] = ("search",),
    interface: str | None = None,
) -> Instance:
    url = f"http://127.0.0.1:{port}/"
    card: dict[str, Any] = {
        "name": service,
        "supportedInterfaces": [
            {"url": interface or url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "skills": [{"id": s} for s in skills],
    }
    return Instance(
        service=service,
        id=instance,
        kind=Kind.A2A_AGENT,
        url=url,
        card=card,
        health=health,
        check=CheckSpec(),
        create_index=1,
        modify_index=1,
    )


def tool_server(service: str, instance: str, port: int) -> Instance:
    return Instance(
        service=service,
        id=instance,
        kind=Kind.MCP_SERVER,
        url=f"http://127.0.0.1:{port}/mcp",
        tools=[{"name": "add"}],
        health=Health.PASSING,
        create_index=1,
        modify_index=1,
    )


def test_table_groups_routable_instances_by_service_and_skill() -> None:
    table = RouteTable.build(
        [
            agent("researcher", "r-1", 9001),
            agent("researcher", "r-2", 9002, health=Health.CRITICAL),
            agent("researcher", "r-3", 9003, health=Health.WARNING),
            agent("calculator", "c-1", 9004, skills=("calculate", "search")),
            tool_server("calc", "t-1", 9100),
        ],
        index=7,
        now=10.0,
    )
    assert table.loaded
    assert table.index == 7
    assert [r.key[1] for r in table.routes("researcher")] == ["r-1", "r-3"]
    assert [r.key[1] for r in table.by_skill("search")] == ["r-1", "r-3", "c-1"]
    assert table.routes("nobody") == ()
    calc = table.routes("calc")[0]
    assert calc.endpoint == "http://127.0.0.1:9100/mcp"
    assert calc.origin == ("127.0.0.1", 9100)
    assert table.age(now=12.5) == 2.5
    assert len(table.keys()) == 5


def test_agent_endpoint_is_the_cards_jsonrpc_interface_on_its_own_origin() -> None:
    same = agent("a", "a-1", 9001, interface="http://127.0.0.1:9001/rpc")
    elsewhere = agent("b", "b-1", 9002, interface="http://169.254.169.254/")
    table = RouteTable.build([same, elsewhere], index=1)
    assert table.routes("a")[0].endpoint == "http://127.0.0.1:9001/rpc"
    assert table.routes("b")[0].endpoint == "http://127.0.0.1:9002/"


def test_card_prefers_a_routable_replica_and_empty_table_is_not_loaded() -> None:
    table = RouteTable.build([agent("a", "a-1", 9001, health=Health.CRITICAL)], index=1)
    assert table.card("a") is not None  # still described, though not routable
    assert table.card("nobody") is None
    assert not RouteTable.empty().loaded
