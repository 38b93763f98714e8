"""py-consul over an async httpx client: Consul calls never block the event loop.

py-consul's endpoint objects hand every request to a pluggable ``HTTPClient``
and return whatever it returns; this one returns coroutines, so
``await client.health.service(...)`` is a non-blocking call. Blocking queries
hold a connection, not a thread: a registry serving many gateways' watches
would otherwise pin one worker thread per held query.

Only this package imports ``consul`` (an import-linter contract says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import consul.base
import httpx

from registry.backends.consul.settings import ConsulSettings

__all__ = ["AsyncConsul", "ConsulUnreachable", "parse_wait"]

# Reads whose endpoint py-consul sends without the consistency mode.
_MODE_PATHS = ("/v1/health/", "/v1/catalog/")


class ConsulUnreachable(Exception):
    """Consul did not answer (connection refused, timeout, 5xx): a transient state."""


def parse_wait(text: str) -> float:
    """The seconds of a ``wait`` parameter as this adapter sends it (``"1500ms"``, ``"10s"``)."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text)


class _HttpxClient(consul.base.HTTPClient):  # type: ignore[misc]
    def __init__(self, settings: ConsulSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings.host, settings.port, settings.scheme, verify=True)
        self._settings = settings
        self._http = http

    async def _request(
        self,
        callback: Callable[[Any], Any],
        method: str,
        path: str,
        params: list[tuple[str, Any]] | None,
        data: str | bytes | None,
        headers: dict[str, str] | None,
    ) -> Any:
        query = list(params or [])
        names = {name for name, _ in query}
        mode = self._settings.consistency
        if (
            method == "GET"
            and mode != "default"
            and mode not in names
            and path.startswith(_MODE_PATHS)
        ):
            query.append((mode, "1"))
        dc = self._settings.datacenter
        if dc and path == "/v1/txn" and "dc" not in names:
            query.append(("dc", dc))  # py-consul's txn takes no datacenter; KV reads do
        token = self._settings.token
        if token and not (headers and "X-Consul-Token" in headers):
            # Some py-consul endpoints (txn) send no token of their own.
            headers = {**(headers or {}), "X-Consul-Token": token}
        timeout = self._settings.request_timeout
        wait = dict(query).get("wait")
        if wait is not None:
            # Consul adds up to wait/16 of jitter before it answers.
            timeout += parse_wait(str(wait)) * 17 / 16
        try:
            response = await self._http.request(
                method,
                self.uri(path, query),
                content=data or None,
                headers=headers,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise ConsulUnreachable(f"{type(exc).__name__} on {method} {path}") from None
        return callback(consul.base.Response(response.status_code, response.headers, response.text))

    def get(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        return self._request(callback, "GET", path, params, None, headers)

    def put(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        data: str | bytes = "",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self._request(callback, "PUT", path, params, data, headers)

    def delete(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        data: str | bytes = "",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self._request(callback, "DELETE", path, params, data, headers)

    def post(
        self,
        callback: Callable[[Any], Any],
        path: str,
        params: Any = None,
        data: str = "",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self._request(callback, "POST", path, params, data, headers)

    def close(self) -> Any:
        return self._http.aclose()


class AsyncConsul(consul.base.Consul):  # type: ignore[misc]
    """A py-consul client whose calls are coroutines, configured only by ``settings``.

    py-consul reads ``CONSUL_HTTP_*`` from the environment when an argument is
    missing; every one is passed here, and the token is set afterwards, so only
    the CLI reads the environment.
    """

    def __init__(self, settings: ConsulSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http_client = http
        super().__init__(
            host=settings.host,
            port=settings.port,
            scheme=settings.scheme,
            consistency=settings.consistency,
            dc=settings.datacenter,
            verify=True,
        )
        self.token = settings.token

    def http_connect(
        self, host: str, port: int, scheme: str, verify: bool | str = True, cert: Any = None
    ) -> _HttpxClient:
        return _HttpxClient(self._settings, self._http_client)
