"""The registry's HTTP API as a client sees it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.registry.server.conftest import AppFactory
from tests.support.peers import agent_card

pytestmark = pytest.mark.anyio

PATH = "/v1/services/researcher/instances/r-1"


def agent_body(port: int = 9001, *, interval: float = 0, **extra: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/"
    return {
        "kind": "a2a-agent",
        "url": url,
        "card": agent_card("researcher", url, skills=["search"]),
        "check": {"ttl_seconds": 30, "interval_seconds": interval},
        **extra,
    }


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json().get("errors", [])]


async def test_register_answers_201_then_200_with_the_stored_record(
    registry: httpx.AsyncClient,
) -> None:
    first = await registry.put(PATH, json=agent_body())
    assert first.status_code == 201
    record = first.json()
    assert (record["service"], record["id"], record["health"]) == ("researcher", "r-1", "critical")
    assert record["card"]["skills"][0]["id"] == "search"
    again = await registry.put(PATH, json=agent_body(tags=["v2"]))
    assert again.status_code == 200
    assert again.json()["tags"] == ["v2"]
    assert (await registry.get(PATH)).json()["tags"] == ["v2"]


async def test_heartbeat_turns_passing_and_delete_removes(registry: httpx.AsyncClient) -> None:
    await registry.put(PATH, json=agent_body())
    beat = await registry.put(PATH + "/heartbeat")
    assert beat.status_code == 200
    assert beat.json()["health"] == "passing"
    warn = await registry.put(PATH + "/heartbeat", json={"status": "warning", "note": "busy"})
    assert warn.json()["health"] == "warning"
    assert (await registry.delete(PATH)).status_code == 204
    gone = await registry.get(PATH)
    assert gone.status_code == 404
    assert gone.json()["type"] == "urn:meshgate:error:not-found"
    assert (await registry.put(PATH + "/heartbeat")).status_code == 404
    assert (await registry.delete(PATH)).status_code == 404


async def test_lists_filter_by_health_skill_tag_and_text(registry: httpx.AsyncClient) -> None:
    await registry.put(PATH, json=agent_body())
    await registry.put("/v1/services/researcher/instances/r-2", json=agent_body(9002))
    await registry.put("/v1/services/researcher/instances/r-2/heartbeat")
    await registry.put(
        "/v1/services/calc/instances/c-1",
        json={"kind": "mcp-server", "url": "http://127.0.0.1:9100/mcp", "tools": [{"name": "add"}]},
    )
    services = (await registry.get("/v1/services")).json()
    assert [(s["name"], s["instances"], s["passing"]) for s in services] == [
        ("calc", 1, 0),
        ("researcher", 2, 1),
    ]
    listed = await registry.get("/v1/services/researcher/instances")
    assert [i["id"] for i in listed.json()] == ["r-1", "r-2"]
    assert int(listed.headers["x-meshgate-index"]) >= 1
    passing = await registry.get("/v1/services/researcher/instances", params={"passing": "true"})
    assert [i["id"] for i in passing.json()] == ["r-2"]

    async def agent_ids(**params: str) -> list[str]:
        return [i["id"] for i in (await registry.get("/v1/agents", params=params)).json()]

    assert await agent_ids() == ["r-1", "r-2"]
    assert await agent_ids(skill="search") == ["r-1", "r-2"]
    assert await agent_ids(skill="nothing") == []
    assert await agent_ids(q="researcher search") == ["r-1", "r-2"]
    assert await agent_ids(passing="1") == ["r-2"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "body"),
        (b"", {"content-type": "application/json"}, 400, "body"),
        (b'{"kind": "a2a-agent"}', {"content-type": "text/plain"}, 415, None),
        (b'{"url": "http://127.0.0.1:9001/"}', {}, 422, "kind"),
        (b'{"kind": "robot", "url": "http://127.0.0.1:9001/"}', {}, 422, "kind"),
        (b'{"kind": "a2a-agent", "url": "http://127.0.0.1:9001/"}', {}, 422, "card"),
        (b'{"kind": "mcp-server", "url": "http://10.0.0.1/mcp"}', {}, 422, "url"),
        (b'{"kind": "mcp-server", "url": "ftp://127.0.0.1/"}', {}, 422, "url"),
        (b'{"kind": "mcp-server", "url": "http://127.0.0.1/", "extra": 1}', {}, 422, "extra"),
        (
            b'{"kind": "mcp-server", "url": "http://127.0.0.1/", "check": {"ttl_seconds": -1}}',
            {},
            422,
            "check.ttl_seconds",
        ),
        (b"[1, 2]", {}, 422, "body"),
        (b"\xff\xfe", {"content-type": "application/json"}, 400, "body"),
    ],
)
async def test_bad_registrations_get_structured_errors(
    registry: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    response = await registry.put(PATH, content=body, headers=headers)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["status"] == status
    if field is not None:
        assert field in problem_fields(response)
    assert (await registry.get(PATH)).status_code == 404  # nothing half-stored


async def test_card_refused_by_a2a_types_names_the_field(registry: httpx.AsyncClient) -> None:
    body = agent_body()
    del body["card"]["skills"][0]["name"]
    body["card"]["url"] = "http://127.0.0.1:9001/"  # a 0.3-era field
    response = await registry.put(PATH, json=body)
    assert response.status_code == 422
    assert any(f.startswith("card") for f in problem_fields(response))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/services/Researcher/instances/r-1",
        "/v1/services/researcher/instances/r_1",
        "/v1/services/-x/instances/r-1",
        "/v1/services/" + "a" * 64 + "/instances/r-1",
    ],
)
async def test_names_outside_dns_labels_are_refused(registry: httpx.AsyncClient, path: str) -> None:
    response = await registry.put(path, json=agent_body())
    assert response.status_code == 422
    assert set(problem_fields(response)) & {"service", "instance"}


async def test_oversized_body_gets_413(registry_factory: AppFactory) -> None:
    from registry.validation import Limits

    async with registry_factory(limits=Limits(max_body_bytes=2_000)) as registry:
        body = agent_body(meta={f"k{i}": "x" * 100 for i in range(30)})
        response = await registry.put(PATH, json=body)
        assert response.status_code == 413
        assert response.json()["type"] == "urn:meshgate:error:payload-too-large"

        # Without a Content-Length the stream is cut at the limit too.
        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 500

        streamed = await registry.put(
            PATH, content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


async def test_api_keys_guard_writes_and_ownership(registry_factory: AppFactory) -> None:
    async with registry_factory(api_keys=("key-a", "key-b")) as registry:
        missing = await registry.put(PATH, json=agent_body())
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await registry.put(PATH, json=agent_body(), headers={"x-api-key": "nope"})
        assert wrong.status_code == 401
        a = {"authorization": "Bearer key-a"}
        b = {"x-api-key": "key-b"}
        assert (await registry.put(PATH, json=agent_body(), headers=a)).status_code == 201
        assert (await registry.put(PATH, json=agent_body(), headers=b)).status_code == 409
        assert (await registry.delete(PATH, headers=b)).status_code == 403
        assert (await registry.put(PATH + "/heartbeat", headers=b)).status_code == 403
        assert (await registry.delete(PATH)).status_code == 401
        # Reads stay open; the owner's key is never shown.
        record = await registry.get(PATH)
        assert record.status_code == 200
        assert "key-a" not in record.text
        assert (await registry.put(PATH + "/heartbeat", headers=a)).json()["health"] == "passing"
        assert (await registry.delete(PATH, headers=a)).status_code == 204


async def test_operational_endpoints(registry: httpx.AsyncClient) -> None:
    assert (await registry.get("/healthz")).status_code == 200
    ready = await registry.get("/readyz")
    assert ready.json() == {"status": "ready", "backend": "memory"}
    await registry.put(PATH, json=agent_body())
    metrics = await registry.get("/metrics")
    assert metrics.status_code == 200  # served at /metrics itself, no redirect
    assert 'meshgate_registry_requests_total{method="PUT"' in metrics.text
    assert 'route="/v1/services/{service}/instances/{instance}"' in metrics.text
    document = (await registry.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert "/v1/services/{service}/instances/{instance}/heartbeat" in document["paths"]
    assert "Registration" in document["components"]["schemas"]
    page = await registry.get("/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert "/v1/agents" in page.text
    assert "<script src" not in page.text


async def test_unknown_routes_and_methods_answer_problem_details(
    registry: httpx.AsyncClient,
) -> None:
    missing = await registry.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await registry.post(PATH, json={})
    assert wrong.status_code == 405
    assert wrong.json()["status"] == 405
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PUT", "DELETE"}
    assert (await registry.head(PATH)).status_code == 404


async def test_agent_answers_follow_changes(registry: httpx.AsyncClient) -> None:
    await registry.put(PATH, json=agent_body())
    params = {"skill": "search", "passing": "true"}
    assert (await registry.get("/v1/agents", params=params)).json() == []
    await registry.put(PATH + "/heartbeat")
    again = await registry.get("/v1/agents", params=params)
    assert [i["id"] for i in again.json()] == ["r-1"]
    await registry.delete(PATH)
    assert (await registry.get("/v1/agents", params=params)).json() == []
