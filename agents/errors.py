"""The agents package's exception family and the one table that maps it to the wire.

Every failure of delegation (:mod:`agents.delegation`), of MCP tool calls
(:mod:`agents.tools`) and of the optional LLM endpoint (:mod:`agents.llm`) is an
:class:`AgentError`; no raw SDK or httpx exception
leaves those modules. The classes derive from :class:`~agents.sdk.SkillError`,
so a skill that lets one propagate fails its task with the (secret-free)
message instead of a traceback. Faces that answer over HTTP use ``status``
and :meth:`AgentError.problem` (RFC 9457), JSON-RPC faces ``jsonrpc_code``;
the codes follow :mod:`registry.errors`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agents.sdk import SkillError

__all__ = [
    "ERROR_TABLE",
    "AgentError",
    "LlmUnavailable",
    "NoPeer",
    "PeerFailed",
    "PeerTimeout",
    "PeerUnavailable",
    "ToolFailed",
    "UnknownSkill",
]


class AgentError(SkillError):
    """Base of every error the agents package reports to a caller."""

    code: ClassVar[str] = "agent-internal"
    title: ClassVar[str] = "Agent error"

    def __init__(self, detail: str, *, peer: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        #: The agent or service the error concerns ("" when none was chosen).
        self.peer = peer

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code][0]

    @property
    def jsonrpc_code(self) -> int:
        return ERROR_TABLE[self.code][1]

    def problem(self) -> dict[str, Any]:
        """RFC 9457 problem details."""
        return {
            "type": f"urn:meshgate:error:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


class UnknownSkill(AgentError):
    """A message asked for a skill the agent does not have, or named none of several.

    The runtime raises it when it picks a message's skill
    (:func:`agents.runtime.wire.select_skill`); the task fails with this code.
    """

    code = "unknown-skill"
    title = "Unknown skill"


class NoPeer(AgentError):
    """No passing agent has the skill (or no passing instance of the service or agent).

    503 like a proxy with no healthy upstream: it may pass once one registers.
    """

    code = "no-peer"
    title = "No healthy peer"


class PeerUnavailable(AgentError):
    """A peer was chosen but could not be reached, or answered outside the protocol."""

    code = "peer-unavailable"
    title = "Peer unavailable"


class PeerTimeout(PeerUnavailable):
    """A peer did not answer within the deadline."""

    code = "peer-timeout"
    title = "Peer timed out"


class PeerFailed(AgentError):
    """A peer answered, and its task ended failed, canceled, rejected or wanting input."""

    code = "peer-failed"
    title = "Peer task failed"

    def __init__(self, detail: str, *, peer: str = "", state: str = "") -> None:
        super().__init__(detail, peer=peer)
        #: The A2A task state the peer reported (``failed``, ``canceled``, ...).
        self.state = state


class ToolFailed(AgentError):
    """A tool server refused a call with a JSON-RPC error (unknown tool, bad arguments).

    A tool that runs and reports an error is not this: that is a
    :class:`~agents.sdk.ToolResult` with ``is_error`` set.
    """

    code = "tool-failed"
    title = "Tool call refused"

    def __init__(self, detail: str, *, peer: str = "", rpc_code: int = 0) -> None:
        super().__init__(detail, peer=peer)
        #: The JSON-RPC error code the tool server answered.
        self.rpc_code = rpc_code


class LlmUnavailable(AgentError):
    """The optional LLM endpoint could not be reached, refused, or answered outside the protocol.

    The reference skills catch it and fall back to their deterministic path;
    its message never holds the API key.
    """

    code = "llm-unavailable"
    title = "LLM unavailable"


#: code -> (HTTP status, JSON-RPC error code). The JSON-RPC codes sit in the
#: server-error range, -3205x, beside the registry's -32053 for "unavailable".
ERROR_TABLE: dict[str, tuple[int, int]] = {
    UnknownSkill.code: (400, -32602),
    NoPeer.code: (503, -32050),
    PeerFailed.code: (502, -32051),
    PeerUnavailable.code: (502, -32052),
    PeerTimeout.code: (504, -32054),
    ToolFailed.code: (502, -32055),
    LlmUnavailable.code: (502, -32056),
    AgentError.code: (500, -32603),
}
