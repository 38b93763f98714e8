"""The registry HTTP service (``meshgate registry``)."""

from registry.server.app import RegistrySettings, create_app

__all__ = ["RegistrySettings", "create_app"]
