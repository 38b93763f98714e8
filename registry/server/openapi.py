"""The OpenAPI 3.1 document of the registry, and a self-contained page for it."""

from __future__ import annotations

import html
from typing import Any

from pydantic.json_schema import models_json_schema

from registry.models import HeartbeatBody, Instance, Registration, ServiceSummary
from registry.server.query import DURATION_PATTERN, FALSE_WORDS, TRUE_WORDS

__all__ = ["DOCS_CSS", "docs_page", "openapi_document"]

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names each offending field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_NAME_PARAMS = [
    {
        "name": n,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"},
    }
    for n in ("service", "instance")
]
_BLOCKING_PARAMS = [
    {
        "name": "index",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0},
        "description": "Blocking query: hold until the index differs from this one.",
    },
    {
        "name": "wait",
        "in": "query",
        "schema": {"type": "string", "pattern": DURATION_PATTERN},
        "description": "How long to hold (for example 30s); at most 5m.",
    },
]
_PASSING = {
    "name": "passing",
    "in": "query",
    # Consul's manner: a bare `?passing` is true; exactly these spellings.
    "schema": {"type": "string", "enum": [*TRUE_WORDS, *FALSE_WORDS]},
    "description": "Only passing instances (`passing`, `passing=true`).",
}
_INDEX_HEADER = {
    "X-Meshgate-Index": {
        "description": "The index this answer reflects; pass it back as `index`.",
        "schema": {"type": "integer"},
    },
    "X-Meshgate-Stale-Seconds": {
        "description": "Present when the store could not reach its source (Consul) for "
        "this long: the answer is its last view.",
        "schema": {"type": "number"},
    },
}
_WRITE_ERRORS = {
    "400": _problem("The body is not JSON."),
    "401": _problem("An API key is required and was missing or wrong."),
    "413": _problem("The body is over the size limit."),
    "415": _problem("The body is not application/json."),
    "422": _problem("A field breaks a rule; `errors` names it."),
}


def _listing(summary: str, item: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params + _BLOCKING_PARAMS,
            "responses": {
                "200": {
                    "description": "The list, at the index in `X-Meshgate-Index`.",
                    "headers": _INDEX_HEADER,
                    "content": _json({"type": "array", "items": _ref(item)}),
                },
                "422": _problem("A query parameter is invalid."),
            },
        }
    }


def openapi_document(version: str) -> dict[str, Any]:
    """The registry's API, with schemas taken from the models it validates with."""
    _, defs = models_json_schema(
        [
            (Registration, "validation"),
            (Instance, "serialization"),
            (HeartbeatBody, "validation"),
            (ServiceSummary, "serialization"),
        ],
        ref_template=_REF,
    )
    schemas = dict(defs.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA
    instance_path = {
        "parameters": _NAME_PARAMS,
        "put": {
            "summary": "Register or replace an instance",
            "requestBody": {"required": True, "content": _json(_ref("Registration"))},
            "responses": {
                "200": {"description": "Replaced.", "content": _json(_ref("Instance"))},
                "201": {"description": "Registered.", "content": _json(_ref("Instance"))},
                "409": _problem("The service belongs to another API key."),
                **_WRITE_ERRORS,
            },
        },
        "get": {
            "summary": "One instance",
            "responses": {
                "200": {"description": "The instance.", "content": _json(_ref("Instance"))},
                "404": _problem("Not registered."),
                "422": _problem("A name is invalid."),
            },
        },
        "delete": {
            "summary": "Deregister an instance",
            "responses": {
                "204": {"description": "Deregistered."},
                "403": _problem("Registered by another API key."),
                "404": _problem("Not registered."),
                **_WRITE_ERRORS,
            },
        },
    }
    heartbeat_path = {
        "parameters": _NAME_PARAMS,
        "put": {
            "summary": "Heartbeat: pass (or set) the TTL check",
            "requestBody": {"required": False, "content": _json(_ref("HeartbeatBody"))},
            "responses": {
                "200": {"description": "The instance.", "content": _json(_ref("Instance"))},
                "403": _problem("Registered by another API key."),
                "404": _problem("Not registered: register again."),
                **_WRITE_ERRORS,
            },
        },
    }
    probe = {"200": {"description": "OK."}, "503": {"description": "Not ready."}}
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Meshgate registry",
            "version": version,
            "description": "Agents and MCP tool servers of a Meshgate mesh, with their health. "
            "List endpoints are blocking queries in Consul's manner.",
        },
        "paths": {
            "/v1/services": _listing(
                "Services with instance counts by health", "ServiceSummary", []
            ),
            "/v1/services/{service}/instances": _listing(
                "Instances of a service",
                "Instance",
                [
                    _NAME_PARAMS[0],
                    _PASSING,
                ],
            ),
            "/v1/services/{service}/instances/{instance}": instance_path,
            "/v1/services/{service}/instances/{instance}/heartbeat": heartbeat_path,
            "/v1/instances": _listing(
                "Every instance of every service (what a gateway routes from)",
                "Instance",
                [_PASSING],
            ),
            "/v1/agents": _listing(
                "Agent instances whose card matches",
                "Instance",
                [
                    {"name": "skill", "in": "query", "schema": {"type": "string"}},
                    {"name": "tag", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    _PASSING,
                ],
            ),
            "/healthz": {"get": {"summary": "Liveness", "responses": probe}},
            "/readyz": {"get": {"summary": "Readiness", "responses": probe}},
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "Exposition.", "content": text}},
                }
            },
        },
        "components": {"schemas": schemas},
    }


DOCS_CSS = """\
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2330}
table{border-collapse:collapse;width:100%}
td,th{padding:.35rem .6rem;border-bottom:1px solid #e3e6ec;text-align:left}
.m{font-weight:600;color:#2456c7}code{font-size:14px}
"""


def docs_page(document: dict[str, Any], *, stylesheet: str | None = None) -> str:
    """A readable page of the API that loads nothing from elsewhere.

    The style is inline, or at ``stylesheet`` (a URL on the same server) for a
    host whose Content-Security-Policy refuses inline styles.
    """
    rows = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            codes = ", ".join(sorted(op.get("responses", {})))
            rows.append(
                f"<tr><td class=m>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td><td>{codes}</td></tr>"
            )
    info = document["info"]
    style = (
        f'<link rel=stylesheet href="{html.escape(stylesheet)}">'
        if stylesheet
        else f"<style>\n{DOCS_CSS}</style>"
    )
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{html.escape(info["title"])}</title>
{style}</head><body>
<h1>{html.escape(info["title"])} <small>{html.escape(info["version"])}</small></h1>
<p>{html.escape(info["description"])} The machine-readable document is at
<a href="/openapi.json">/openapi.json</a>.</p>
<table><tr><th>Method</th><th>Path</th><th>What</th><th>Responses</th></tr>
{"".join(rows)}
</table></body></html>
"""
