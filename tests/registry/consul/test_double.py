"""The Consul double keeps Consul's documented semantics (over HTTP, on a loopback port).

These pin the double itself, so that the backend tests built on it test
against Consul's behaviour and not against a convenient fiction.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from tests.support.consul_double import ConsulDouble, parse_duration, running
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[tuple[ConsulDouble, httpx.AsyncClient]]:
    async with (
        running() as (double, url),
        httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as http,
    ):
        yield double, http


def index_of(response: httpx.Response) -> int:
    return int(response.headers["X-Consul-Index"])


async def register(http: httpx.AsyncClient, sid: str, **check: object) -> None:
    body = {"Name": "web", "ID": sid, "Check": {"CheckID": f"{sid}:ttl", "TTL": "30s", **check}}
    (await http.put("/v1/agent/service/register", json=body)).raise_for_status()


def test_go_durations_parse_like_consul() -> None:
    assert parse_duration("10s") == 10
    assert parse_duration("1m30s") == 90
    assert parse_duration("250ms") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("10 parsecs")


async def test_a_blocking_query_holds_until_the_index_moves(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    _, http = api
    first = await http.get("/v1/kv/k")
    assert first.status_code == 404  # a missing key still reports the index
    index = index_of(first)
    answers: list[httpx.Response] = []

    async def block() -> None:
        answers.append(await http.get("/v1/kv/k", params={"index": index, "wait": "5s"}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(block)
        await eventually(lambda: _held(api[0]), bool)
        assert answers == []
        assert (await http.put("/v1/kv/k", content=b"v")).json() is True
    assert index_of(answers[0]) > index
    assert base64.b64decode(answers[0].json()[0]["Value"]) == b"v"


async def _held(double: ConsulDouble) -> int:
    return double.held


async def test_a_blocking_query_answers_after_its_wait_without_a_change(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    _, http = api
    index = index_of(await http.get("/v1/health/state/any"))
    started = time.monotonic()
    answer = await http.get("/v1/health/state/any", params={"index": index, "wait": "200ms"})
    assert time.monotonic() - started >= 0.19
    assert index_of(answer) == index


async def test_ttl_expiry_turns_critical_and_deregister_after_removes(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    _, http = api
    await register(http, "web-1", TTL="200ms", DeregisterCriticalServiceAfter="400ms")
    (await http.put("/v1/agent/check/pass/web-1:ttl", params={"note": "ok"})).raise_for_status()
    checks = (await http.get("/v1/health/service/web")).json()[0]["Checks"]
    assert [(c["CheckID"], c["Status"], c["Output"]) for c in checks if c["ServiceID"]] == [
        ("web-1:ttl", "passing", "ok")
    ]

    async def web() -> list[dict[str, object]]:
        return list((await http.get("/v1/health/service/web")).json())

    expired = await eventually(web, lambda e: e[0]["Checks"][1]["Status"] == "critical")
    assert expired[0]["Checks"][1]["Output"] == "TTL expired"
    await eventually(web, lambda e: e == [])


async def test_the_passing_filter_counts_every_check(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    _, http = api
    await register(http, "web-1")
    await register(http, "web-2")
    await http.put("/v1/agent/check/pass/web-2:ttl")
    await http.put("/v1/agent/check/warn/web-1:ttl")
    everyone = (await http.get("/v1/health/service/web")).json()
    passing = (await http.get("/v1/health/service/web", params={"passing": "1"})).json()
    assert [e["Service"]["ID"] for e in everyone] == ["web-1", "web-2"]
    assert [e["Service"]["ID"] for e in passing] == ["web-2"]  # warning is not passing


async def test_kv_cas_zero_creates_only_and_cas_n_needs_the_modify_index(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    _, http = api
    assert (await http.put("/v1/kv/owner", params={"cas": 0}, content=b"a")).json() is True
    assert (await http.put("/v1/kv/owner", params={"cas": 0}, content=b"b")).json() is False
    modify = (await http.get("/v1/kv/owner")).json()[0]["ModifyIndex"]
    assert (
        await http.put("/v1/kv/owner", params={"cas": modify + 1}, content=b"c")
    ).json() is False
    assert (await http.put("/v1/kv/owner", params={"cas": modify}, content=b"c")).json() is True
    assert (await http.delete("/v1/kv/owner", params={"cas": modify})).json() is False


async def test_a_transaction_applies_at_one_index_or_not_at_all(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    _, http = api
    value = base64.b64encode(b"x").decode()
    ops = [
        {"KV": {"Verb": "set", "Key": "a/1", "Value": value}},
        {"KV": {"Verb": "delete-cas", "Key": "a/2", "Index": 99}},
    ]
    refused = await http.put("/v1/txn", content=json.dumps(ops))
    assert refused.status_code == 409
    assert (await http.get("/v1/kv/a/", params={"recurse": 1})).status_code == 404
    ops[1] = {"KV": {"Verb": "set", "Key": "a/2", "Value": value}}
    assert (await http.put("/v1/txn", content=json.dumps(ops))).status_code == 200
    items = (await http.get("/v1/kv/a/", params={"recurse": 1})).json()
    assert len({i["ModifyIndex"] for i in items}) == 1


async def test_a_token_is_required_when_acls_are_on() -> None:
    async with (
        running(ConsulDouble(token="s3cret")) as (_, url),
        httpx.AsyncClient(base_url=url, trust_env=False) as http,
    ):
        assert (await http.get("/v1/kv/k")).status_code == 403
        answer = await http.get("/v1/kv/k", headers={"X-Consul-Token": "s3cret"})
        assert answer.status_code == 404


async def test_a_forgotten_state_starts_its_index_again(
    api: tuple[ConsulDouble, httpx.AsyncClient],
) -> None:
    double, http = api
    await register(http, "web-1")
    before = index_of(await http.get("/v1/health/state/any"))
    double.forget()
    after = index_of(await http.get("/v1/health/state/any"))
    assert after < before
    assert after >= 1  # never 0
