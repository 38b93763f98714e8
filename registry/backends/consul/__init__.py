"""The ``consul`` registry backend (``--backend consul``; needs the ``consul`` extra)."""

from registry.backends.consul.backend import ConsulBackend
from registry.backends.consul.settings import Consistency, ConsulSettings

__all__ = ["Consistency", "ConsulBackend", "ConsulSettings"]
