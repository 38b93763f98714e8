"""The gateway's dashboard at ``/ui``: a live page of the mesh, served by the gateway itself."""

from gateway.ui.routes import SHELL_PATHS, ui_routes
from gateway.ui.state import MeshView, UiState

__all__ = ["SHELL_PATHS", "MeshView", "UiState", "ui_routes"]
