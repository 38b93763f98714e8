"""The dashboard's routes: the page, its stylesheet and script, and the state it polls.

The page, ``ui.css`` and ``ui.js`` hold no data about the mesh, and are
served without credentials (:data:`SHELL_PATHS`) so that a browser, which
cannot add a header to a navigation, can load them and ask for a key.
``/ui/state.json`` is authenticated like every other route; the script sends
the key the operator typed as an ``Authorization`` header, kept in the tab's
``sessionStorage`` only (no cookie: nothing a forged cross-site request
would carry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.ui.state import MeshView, UiState

__all__ = ["SHELL_PATHS", "ui_routes"]

#: Canonical paths of the page and its assets (no trailing slash: the gateway drops it).
SHELL_PATHS = frozenset(("/ui", "/ui/ui.css", "/ui/ui.js"))

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
}


def _asset(name: str) -> Callable[[Request], Awaitable[Response]]:
    body = resources.files("gateway.ui").joinpath("static", name).read_bytes()
    headers = {"cache-control": "no-cache"}

    async def serve(request: Request) -> Response:
        return Response(body, media_type=_TYPES[name], headers=headers)

    return serve


def ui_routes(view: Callable[[], MeshView]) -> list[Route]:
    """Routes of ``/ui``; ``view`` reads the running gateway at each poll."""
    state = UiState()

    async def state_json(request: Request) -> Response:
        return JSONResponse(state.build(view()), headers={"cache-control": "no-store"})

    return [
        Route("/ui", _asset("index.html"), methods=["GET"]),
        Route("/ui/ui.css", _asset("ui.css"), methods=["GET"]),
        Route("/ui/ui.js", _asset("ui.js"), methods=["GET"]),
        Route("/ui/state.json", state_json, methods=["GET"]),
    ]
