"""The gateway's OpenAPI document (REST facade and operational routes)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


_AGENT = {"name": "agent", "in": "path", "required": True, "schema": {"type": "string"}}
_MESSAGE = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "The message, as plain text."},
        "parts": {"type": "array", "items": {"type": "object"}, "description": "A2A parts."},
        "skill": {"type": "string", "description": "The skill to run (agents with several)."},
        "contextId": {"type": "string"},
        "taskId": {"type": "string", "description": "Continue this task."},
        "metadata": {"type": "object"},
    },
}
_RESULT = {
    "type": "object",
    "properties": {
        "agent": {"type": "string"},
        "taskId": {"type": "string"},
        "contextId": {"type": "string"},
        "state": {"type": "string", "enum": ["completed", "failed", "canceled", "rejected"]},
        "text": {"type": "string"},
        "data": {},
        "citations": {"type": "array", "items": {"type": "object"}},
        "error": {"type": "string"},
    },
}
#: One Server-Sent Event of ``/v1/stream`` (as tools that validate streams read it:
#: each event against the schema); ``data`` is one JSON object.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["task", "progress", "artifact", "result", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
_ERRORS = {
    "400": _problem("The body is not a message."),
    "401": _problem("Credentials are required."),
    "404": _problem("No such agent (or not visible to you)."),
    "413": _problem("The body is over the limit."),
    "429": _problem("Rate limited; see Retry-After."),
    "502": _problem("The agent could not be reached."),
    "503": _problem("No healthy instance, or the gateway is at capacity; see Retry-After."),
    "504": _problem("The agent did not answer in time."),
}


def openapi_document(version: str) -> dict[str, Any]:
    ok = {"200": {"description": "OK."}, "503": {"description": "Not ready."}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Meshgate gateway",
            "version": version,
            "description": "One entry to every agent of the mesh. A2A is served at "
            "/a2a/{agent}/ (JSON-RPC, SSE, HTTP+JSON; card at "
            "/a2a/{agent}/.well-known/agent-card.json) and /a2a/skills/{skill}/; "
            "this document covers the REST facade and the operational routes.",
        },
        "paths": {
            "/v1/invoke/{agent}": {
                "post": {
                    "summary": "Send a message; answer the finished task as JSON",
                    "parameters": [_AGENT],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _MESSAGE}},
                    },
                    "responses": {
                        "200": {
                            "description": "The task's outcome.",
                            "content": {"application/json": {"schema": _RESULT}},
                        },
                        **_ERRORS,
                    },
                }
            },
            "/v1/stream/{agent}": {
                "post": {
                    "summary": "Send a message; stream progress, then the result (SSE)",
                    "parameters": [_AGENT],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _MESSAGE}},
                    },
                    "responses": {
                        "200": {
                            "description": "Events: task, progress, artifact, result, error.",
                            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                        },
                        **_ERRORS,
                    },
                }
            },
            "/v1/agents": {
                "get": {
                    "summary": "Agents the gateway can route to, with their cards",
                    "parameters": [{"name": "skill", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The agents."}},
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": ok}},
            "/readyz": {
                "get": {"summary": "Ready once the route table is loaded", "responses": ok}
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": ok}},
            "/ui": {
                "get": {
                    "summary": "The dashboard page (no data in it: served without credentials)",
                    "responses": {"200": {"description": "HTML."}},
                }
            },
            "/ui/state.json": {
                "get": {
                    "summary": "What the dashboard shows: services, instances and their health "
                    "(registry and outlier detection), skills, tools, traffic, recent exchanges",
                    "responses": {
                        "200": {"description": "The mesh as the gateway sees it now."},
                        "401": _ERRORS["401"],
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "retry_after": {"type": "integer"},
                    },
                }
            }
        },
    }
