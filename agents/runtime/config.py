"""How an agent process is hosted: :class:`AgentConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mcp_servers.hosting import HostingConfig
from mcp_servers.http import McpHttpSettings

__all__ = ["MEMORY_STORE", "AgentConfig"]

#: ``AgentConfig.task_store`` value for a store that forgets on exit (tests).
MEMORY_STORE = "memory"


@dataclass(frozen=True)
class AgentConfig:
    """Everything the runtime needs besides the :class:`~agents.sdk.Agent` itself.

    ``hosting`` says where the agent listens, the URL its card advertises and
    where it registers (no ``registry_url``: no registration). Tasks go to
    ``task_store``: ``None`` for the SQLite file :attr:`task_db_path`,
    :data:`MEMORY_STORE`, or an async SQLAlchemy URL
    (``postgresql+asyncpg://...``) when replicas share tasks.
    """

    hosting: HostingConfig
    data_dir: Path = Path(".meshgate/agents")
    task_store: str | None = None
    #: The gateway that delegation and tool calls go through (for the clients).
    gateway_url: str | None = None
    #: On shutdown, how long in-flight tasks may run before they are cancelled.
    grace_seconds: float = 10.0
    mcp: McpHttpSettings = field(default_factory=McpHttpSettings)
    #: Largest request body accepted on any route (a message and all its parts).
    max_body_bytes: int = 1_048_576

    def __post_init__(self) -> None:
        if self.grace_seconds < 0:
            raise ValueError("grace_seconds must not be negative")
        if self.max_body_bytes < 1_024:
            raise ValueError("max_body_bytes must be at least 1024")

    @property
    def task_db_path(self) -> Path:
        """The SQLite file of the default task store: ``{data_dir}/{instance}.db``."""
        return self.data_dir / f"{self.hosting.instance_id}.db"
