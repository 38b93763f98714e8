"""Settings of the consul backend, and choosing it by name."""

from __future__ import annotations

import httpx
import pytest

from registry.backends import BackendOptions, create_backend
from registry.backends.consul import ConsulBackend, ConsulSettings
from registry.backends.consul.http import AsyncConsul


def test_addresses_take_the_forms_consul_http_addr_takes() -> None:
    plain = ConsulSettings(addr="127.0.0.1:8501")
    assert (plain.scheme, plain.host, plain.port) == ("http", "127.0.0.1", 8501)
    tls = ConsulSettings(addr="https://consul.internal")
    assert (tls.scheme, tls.host, tls.port) == ("https", "consul.internal", 443)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"addr": "ftp://consul:21"}, "http"),
        ({"consistency": "eventual"}, "consistency"),
        ({"adress": "http://127.0.0.1:8500"}, "unknown consul settings"),
    ],
)
def test_bad_settings_are_refused_by_name(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConsulSettings.from_mapping(values)


def test_the_token_never_shows_in_a_repr() -> None:
    settings = ConsulSettings.from_mapping({"token": "s3cret-token", "datacenter": "east"})
    assert settings.token == "s3cret-token"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in repr(ConsulBackend(settings).settings)


def test_the_backend_is_chosen_by_its_short_name() -> None:
    options = BackendOptions(settings={"addr": "http://127.0.0.1:8600", "consistency": "stale"})
    store = create_backend("consul", options)
    assert isinstance(store, ConsulBackend)
    assert store.settings.consistency == "stale"
    assert store.runs_own_checks


@pytest.mark.anyio
async def test_py_consul_reads_nothing_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-the-environment")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "http://10.9.8.7:8500")
    monkeypatch.setenv("CONSUL_HTTP_SSL", "true")
    async with httpx.AsyncClient() as http:
        client = AsyncConsul(ConsulSettings(addr="http://127.0.0.1:8600"), http)
        assert client.token is None
        assert client.http.base_uri == "http://127.0.0.1:8600"
