"""The small ergonomic layer agents are written against.

An agent is a name, a description, a version, skills and optional tools::

    agent = Agent("summarizer", "Extractive summaries of text.")

    @agent.skill(tags=["text"], examples=["Summarize: ..."])
    async def summarize(message: IncomingMessage, ctx: SkillContext) -> Reply:
        await ctx.progress("ranking sentences")
        return Reply(text=...)

    @agent.tool(annotations=READ_ONLY)
    def word_count(text: str) -> int: ...

The runtime (:mod:`agents.runtime`) turns it into an A2A 1.0 server with an MCP
face; skills never see protocol objects.

A skill may use a language model when the operator configured one
(``ctx.llm``, a :class:`LanguageModel`); it is ``None`` otherwise, and every
skill must work without it. Read it with :func:`language_model`, which also
accepts contexts made outside the runtime (test doubles) that predate it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from mcp_servers.quiet import quiet_server

__all__ = [
    "READ_ONLY",
    "Agent",
    "Citation",
    "Delegator",
    "IncomingMessage",
    "LanguageModel",
    "Reply",
    "SkillContext",
    "SkillError",
    "SkillFn",
    "SkillSpec",
    "ToolCaller",
    "ToolResult",
    "language_model",
]

#: Annotations of a tool that only reads and may be called again freely.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

_SKILL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class IncomingMessage:
    """A message sent to a skill, as plain values."""

    text: str
    #: Structured parts (A2A data parts), in order.
    data: tuple[Mapping[str, Any], ...] = ()
    context_id: str = ""
    task_id: str = ""
    message_id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Citation:
    """Where a piece of an answer came from."""

    source: str
    title: str = ""
    agent: str = ""


@dataclass(frozen=True)
class Reply:
    """What a skill answers: text, optional structured data, and citations."""

    text: str
    data: Mapping[str, Any] | None = None
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class ToolResult:
    """The result of an MCP tool call made by a skill."""

    text: str
    structured: Any = None
    is_error: bool = False


class SkillError(Exception):
    """A skill refuses the request; the task fails with this message (no traceback)."""


class ToolCaller(Protocol):
    """Calls MCP tools of the mesh's tool servers (through the gateway when configured)."""

    async def call(self, service: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult: ...


class Delegator(Protocol):
    """Sends A2A messages to peer agents found by skill (through the gateway by default)."""

    async def ask(
        self, text: str, *, skill: str | None = None, agent: str | None = None, context_id: str = ""
    ) -> Reply: ...


class LanguageModel(Protocol):
    """An optional chat model (an OpenAI-compatible endpoint: :class:`agents.llm.ChatClient`).

    ``complete`` answers one system + user exchange with the model's text. It
    raises :class:`SkillError` (:class:`agents.errors.LlmUnavailable`) when the
    model cannot be reached or answers outside the protocol; what the text
    says is the caller's to check.
    """

    async def complete(self, system: str, user: str) -> str: ...


class SkillContext(Protocol):
    """What the runtime gives a running skill."""

    @property
    def agent_name(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def context_id(self) -> str: ...

    @property
    def tools(self) -> ToolCaller: ...

    @property
    def peers(self) -> Delegator: ...

    @property
    def llm(self) -> LanguageModel | None:
        """The configured language model, or ``None`` (the default: skills work without one)."""
        ...

    async def progress(self, text: str) -> None:
        """Report progress: a ``working`` status update that streaming clients see."""
        ...


def language_model(ctx: SkillContext) -> LanguageModel | None:
    """``ctx.llm``, or ``None`` for a context without the attribute (made before it existed)."""
    llm: LanguageModel | None = getattr(ctx, "llm", None)
    return llm


SkillFn = Callable[[IncomingMessage, SkillContext], Awaitable[Reply | str]]
F = TypeVar("F", bound=SkillFn)


@dataclass(frozen=True)
class SkillSpec:
    """One skill: what the Agent Card says of it, and the function that runs it."""

    id: str
    name: str
    description: str
    fn: SkillFn
    tags: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


class Agent:
    """An agent definition: identity, skills and tools. Build the server with the runtime."""

    def __init__(
        self,
        name: str,
        description: str,
        *,
        version: str = "0.1.0",
        tags: Sequence[str] = (),
        instructions: str | None = None,
    ) -> None:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name):
            raise ValueError(f"agent name {name!r} must be a DNS label")
        self.name = name
        self.description = description
        self.version = version
        self.tags = tuple(tags)
        self.skills: dict[str, SkillSpec] = {}
        #: The MCP server of the agent's tools (served at ``/mcp``).
        self.mcp: MCPServer[Any] = quiet_server(name, instructions=instructions or description)

    def skill(
        self,
        id: str | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        examples: Sequence[str] = (),
    ) -> Callable[[F], F]:
        """Register an async function as a skill (its docstring is the default description)."""

        def register(fn: F) -> F:
            candidate: Any = fn  # keep F: iscoroutinefunction would narrow it
            if not inspect.iscoroutinefunction(candidate):
                raise TypeError(f"skill {fn.__name__!r} must be an async function")
            skill_id = id or fn.__name__.replace("_", "-")
            if not _SKILL_ID.fullmatch(skill_id):
                raise ValueError(f"skill id {skill_id!r} must match {_SKILL_ID.pattern}")
            if skill_id in self.skills:
                raise ValueError(f"skill {skill_id!r} is defined twice")
            self.skills[skill_id] = SkillSpec(
                id=skill_id,
                name=name or skill_id.replace("-", " ").title(),
                description=description or inspect.getdoc(fn) or skill_id,
                fn=fn,
                tags=tuple(tags),
                examples=tuple(examples),
            )
            return fn

        return register

    def tool(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Expose a function as an MCP tool; arguments as for ``MCPServer.tool``."""
        decorator: Callable[[Callable[..., Any]], Callable[..., Any]] = self.mcp.tool(
            *args, **kwargs
        )
        return decorator
