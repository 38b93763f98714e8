"""Layer 0 of Meshgate: the mesh SDK and the registry service.

Models, errors, storage backends, the registry HTTP service and its client,
and self-registration for agents and tool servers.
"""

from registry.backends import RegistryBackend, create_backend
from registry.errors import RegistryError
from registry.models import (
    AgentQuery,
    CheckSpec,
    Health,
    Instance,
    Kind,
    Registration,
    ServiceSummary,
)

__all__ = [
    "AgentQuery",
    "CheckSpec",
    "Health",
    "Instance",
    "Kind",
    "Registration",
    "RegistryBackend",
    "RegistryError",
    "ServiceSummary",
    "create_backend",
]
