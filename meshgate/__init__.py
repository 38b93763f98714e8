"""Meshgate: the operator CLI and the local launcher."""

__version__ = "0.1.0"
__all__ = ["__version__"]
