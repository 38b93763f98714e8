"""A small OpenAI-compatible chat completions server for the LLM tests.

It is a real Starlette app on a loopback socket (:func:`running_llm`): it
checks requests as a strict server would (model, messages, bearer key), answers
in the chat completions wire format with whatever the test scripted, and
records every request. No model runs: answers are deterministic.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.live import serve

__all__ = ["MODEL", "ChatRequest", "FakeLlm", "running_llm"]

MODEL = "fake-model-1"

#: What the server answers: a fixed text, or a function of (system, user).
Script = str | Callable[[str, str], str]


@dataclass(frozen=True)
class ChatRequest:
    """One request the server received."""

    authorization: str | None
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return str(self.body["messages"][0]["content"])

    @property
    def user(self) -> str:
        return str(self.body["messages"][1]["content"])


@dataclass
class FakeLlm:
    """How the server answers, and what it was asked.

    ``api_key`` set: requests without ``Bearer {api_key}`` get OpenAI's 401
    (whose message quotes the key it was given, as OpenAI's does). ``status``
    other than 200: that status with an error body. ``raw``: this body, as is.
    ``hold``: wait for the event before answering (a slow model).
    """

    content: Script = "[]"
    api_key: str | None = None
    status: int = 200
    raw: bytes | None = None
    hold: anyio.Event | None = None
    requests: list[ChatRequest] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])

    async def _complete(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "invalid JSON")
        self.requests.append(ChatRequest(authorization, body))
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            given = (authorization or "").removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {given}")
        messages = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(messages, list):
            return _error(400, "model and messages are required")
        if [m.get("role") for m in messages] != ["system", "user"]:
            return _error(400, "expected a system and a user message")
        if self.hold is not None:
            await self.hold.wait()
        if self.status != 200:
            return _error(self.status, "the model is overloaded")
        if self.raw is not None:
            return Response(self.raw, media_type="application/json")
        system, user = messages[0]["content"], messages[1]["content"]
        content = self.content if isinstance(self.content, str) else self.content(system, user)
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


def _error(status: int, message: str) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}},
        status_code=status,
    )


@contextlib.asynccontextmanager
async def running_llm(fake: FakeLlm) -> AsyncIterator[str]:
    """Serve ``fake`` on loopback; yield its base URL (``http://127.0.0.1:PORT/v1``)."""
    async with serve(fake.app()) as url:
        yield url + "/v1"
