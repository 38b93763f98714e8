"""An optional OpenAI-compatible chat endpoint: :class:`LlmSettings` and :class:`ChatClient`.

Nothing requires it: the reference skills have a deterministic path and take
this one only when the operator configured an endpoint (``meshgate agent``
reads ``MESHGATE_LLM_BASE_URL``, ``MESHGATE_LLM_MODEL`` and
``MESHGATE_LLM_API_KEY``). The client speaks the chat completions wire format
(``POST {base_url}/chat/completions``), so OpenAI, vLLM, llama.cpp's server,
Ollama's ``/v1`` and the like all serve it.

The API key goes in the ``Authorization`` header and nowhere else: it is not in
the settings' ``repr``, in log records or in error messages. Every failure is an
:class:`~agents.errors.LlmUnavailable`; what the model's text says is the
caller's to check.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from agents.errors import LlmUnavailable

__all__ = ["ChatClient", "LlmSettings"]

logger = logging.getLogger("meshgate.agent.llm")


@dataclass(frozen=True)
class LlmSettings:
    """Where the model is and how it is asked.

    ``base_url`` is the API root that ``/chat/completions`` hangs off (for
    OpenAI ``https://api.openai.com/v1``). ``api_key`` is sent as a bearer token
    when given (local servers often need none). ``timeout`` bounds a whole
    exchange, in seconds; ``temperature`` ``None`` leaves it to the server.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    max_tokens: int = 1_024
    temperature: float | None = 0.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"LLM base URL {self.base_url!r} must be an http(s) URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("LLM base URL must have no query or fragment")
        if parts.username or parts.password:
            raise ValueError("LLM base URL must not hold credentials: set the API key instead")
        if not self.model.strip():
            raise ValueError("LLM model must not be blank")
        if self.api_key is not None and (not self.api_key or not self.api_key.isprintable()):
            raise ValueError("LLM API key must be printable and not empty")
        if not self.timeout > 0:
            raise ValueError("LLM timeout must be positive")
        if self.max_tokens < 1:
            raise ValueError("LLM max_tokens must be at least 1")

    @property
    def endpoint(self) -> str:
        """The chat completions URL."""
        return self.base_url.rstrip("/") + "/chat/completions"


def _refusal(status: int) -> str:
    if status in (401, 403):
        return f"the LLM endpoint refused the API key ({status})"
    if status == 404:
        return "the LLM endpoint answered 404: check the base URL and the model"
    if status == 429:
        return "the LLM endpoint is rate limiting (429)"
    return f"the LLM endpoint answered {status}"


def _content(body: Any, model: str) -> str:
    """The first choice's message text, or :class:`LlmUnavailable`."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise LlmUnavailable("the LLM endpoint's answer has no message text", peer=model)
    return content


class ChatClient:
    """Asks the configured model for one completion at a time.

    ``http`` is the caller's client (its pool and lifetime); the settings'
    timeout applies to each exchange whatever the client's own.
    """

    def __init__(self, settings: LlmSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self._http = http

    def __repr__(self) -> str:
        return f"ChatClient({self.settings!r})"

    async def complete(self, system: str, user: str) -> str:
        """The model's answer to ``user`` under the ``system`` instructions."""
        settings = self.settings
        body: dict[str, Any] = {
            "model": settings.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": settings.max_tokens,
            "stream": False,
        }
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        headers = {"Accept": "application/json"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        started = time.perf_counter()
        try:
            with anyio.fail_after(settings.timeout):
                response = await self._http.post(
                    settings.endpoint, json=body, headers=headers, timeout=settings.timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            raise LlmUnavailable(
                f"the LLM endpoint did not answer within {settings.timeout:g}s",
                peer=settings.model,
            ) from None
        except httpx.HTTPError as exc:
            raise LlmUnavailable(
                f"cannot reach the LLM endpoint ({type(exc).__name__})", peer=settings.model
            ) from None
        if response.status_code != 200:
            raise LlmUnavailable(_refusal(response.status_code), peer=settings.model)
        try:
            answer = response.json()
        except ValueError:
            raise LlmUnavailable(
                "the LLM endpoint answered with something other than JSON", peer=settings.model
            ) from None
        content = _content(answer, settings.model)
        logger.debug(
            "LLM %s answered %d characters in %.2fs",
            settings.model,
            len(content),
            time.perf_counter() - started,
        )
        return content
