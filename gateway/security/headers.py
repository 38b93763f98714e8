"""CORS and security headers on every response, as one pure ASGI middleware.

The gateway's CORS policy is the only one: ``access-control-*`` headers an
upstream sends are dropped, so an agent cannot widen it. Preflights are
answered here (204, or 403 when refused) and never reach authentication,
because browsers send them without credentials. Place this middleware
outside the auth and body-limit middlewares so their answers carry the
headers too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import Forbidden, send_error

__all__ = ["CorsSettings", "HeaderSettings", "SecurityHeadersMiddleware", "merge_headers"]

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class CorsSettings:
    """Which browser origins may call the gateway (none by default)."""

    #: Exact origins (``https://app.example``), or ``("*",)`` for any.
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ("GET", "POST", "DELETE", "OPTIONS")
    allow_headers: tuple[str, ...] = (
        "authorization", "content-type", "x-api-key", "a2a-version", "a2a-extensions",
        "last-event-id", "mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name",
        "traceparent", "tracestate",
    )  # fmt: skip
    expose_headers: tuple[str, ...] = (
        "mcp-session-id", "mcp-protocol-version", "retry-after", "www-authenticate",
    )  # fmt: skip
    allow_credentials: bool = False
    max_age: int = 600

    def __post_init__(self) -> None:
        if "*" in self.allow_origins and self.allow_credentials:
            raise ValueError("CORS: credentials cannot be allowed for any origin")


@dataclass(frozen=True)
class HeaderSettings:
    """Security headers added to every response that does not set its own."""

    content_security_policy: str = "default-src 'none'; frame-ancestors 'none'"
    #: For the dashboard and the API docs (served from the gateway itself).
    ui_content_security_policy: str = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    ui_paths: tuple[str, ...] = ("/ui", "/docs")
    referrer_policy: str = "no-referrer"
    frame_options: str = "DENY"
    #: Only behind TLS, e.g. ``max-age=63072000; includeSubDomains``.
    strict_transport_security: str | None = None
    cors: CorsSettings = field(default_factory=CorsSettings)


def _pairs(**headers: str | None) -> Headers:
    return [
        (name.replace("_", "-").encode(), value.encode())
        for name, value in headers.items()
        if value is not None
    ]


def merge_headers(
    headers: Iterable[tuple[bytes, bytes]], extra: Sequence[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` without ``access-control-*``, plus those of ``extra`` not set already."""
    out: Headers = []
    present: set[bytes] = set()
    for item in headers:
        lowered = item[0].lower()
        if lowered.startswith(b"access-control-"):
            continue  # the gateway's policy only
        present.add(lowered)
        out.append(item)
    out += [h for h in extra if h[0] not in present]
    return out


class SecurityHeadersMiddleware:
    """Adds security and CORS headers; answers CORS preflights."""

    def __init__(self, app: ASGIApp, settings: HeaderSettings | None = None) -> None:
        self.app = app
        s = self.settings = settings or HeaderSettings()
        common = _pairs(
            x_content_type_options="nosniff",
            referrer_policy=s.referrer_policy,
            x_frame_options=s.frame_options,
            strict_transport_security=s.strict_transport_security,
        )
        self._api = [*common, (b"content-security-policy", s.content_security_policy.encode())]
        self._ui = [*common, (b"content-security-policy", s.ui_content_security_policy.encode())]
        self._ui_prefixes = tuple(s.ui_paths)
        cors = s.cors
        self._any_origin = "*" in cors.allow_origins
        self._origins = frozenset(o.encode() for o in cors.allow_origins if o != "*")
        self._methods = frozenset(m.upper().encode() for m in cors.allow_methods)
        self._allowed_headers = frozenset(h.lower() for h in cors.allow_headers)
        self._actual = _pairs(
            access_control_expose_headers=", ".join(cors.expose_headers) or None,
            access_control_allow_credentials="true" if cors.allow_credentials else None,
        )
        self._preflight = _pairs(
            access_control_allow_methods=", ".join(cors.allow_methods),
            access_control_allow_headers=", ".join(cors.allow_headers),
            access_control_max_age=str(cors.max_age),
        )

    def _allowed(self, origin: bytes) -> bool:
        return self._any_origin or origin in self._origins

    def _cors(self, origin: bytes | None) -> Headers:
        if origin is None or not self._allowed(origin):
            return []
        value = b"*" if self._any_origin else origin
        return [(b"access-control-allow-origin", value), (b"vary", b"origin"), *self._actual]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        request_method: bytes | None = None
        request_headers = b""
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                request_headers = value
        path: str = scope["path"]
        extra = self._ui if path.startswith(self._ui_prefixes) else self._api
        if scope["method"] == "OPTIONS" and origin is not None and request_method is not None:
            await self._answer_preflight(send, origin, request_method, request_headers, extra)
            return
        cors = self._cors(origin)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = merge_headers(message.get("headers", ()), extra)
                headers.extend(cors)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @property
    def api_headers(self) -> Headers:
        """The security headers of a non-UI answer (no CORS: for callers without Origin)."""
        return self._api

    async def _answer_preflight(
        self, send: Send, origin: bytes, method: bytes, requested: bytes, extra: Headers
    ) -> None:
        wanted = {h.strip().lower() for h in requested.decode("latin-1").split(",") if h.strip()}
        if (
            not self._allowed(origin)
            or method.upper() not in self._methods
            or not wanted <= self._allowed_headers
        ):

            async def send_refusal(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message["headers"], *extra]}
                await send(message)

            await send_error(send_refusal, Forbidden("this cross-origin request is not allowed"))
            return
        value = b"*" if self._any_origin else origin
        headers = [
            (b"access-control-allow-origin", value),
            (b"vary", b"origin"),
            *self._preflight,
            *self._actual,
            *extra,
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
