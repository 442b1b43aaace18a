"""Cross-origin access for browser apps: one list of origins (CORS_ALLOWED_ORIGINS) for both
transports.

HTTP goes through Starlette's CORSMiddleware, on the API's paths only (GraphQL, the OAuth token,
revocation and introspection endpoints, and the discovery documents): the sign-in pages are
navigations, never fetched cross-origin. Browsers do not apply CORS to WebSocket handshakes; the
same list is given to Strawberry's origin check (app.http.websocket), which refuses a handshake
from another origin (403) unless it is listed.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import CorsSettings

CORS_PATHS = frozenset({"/graphql", "/oauth/token", "/oauth/revoke", "/oauth/introspect"})
CORS_PREFIXES = ("/.well-known/",)
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Accept", "X-Request-ID", "Idempotency-Key")
EXPOSED_HEADERS = ("X-Request-ID", "Retry-After", "WWW-Authenticate")


class CorsMiddleware:
    """Pure ASGI; other paths and WebSockets pass straight through."""

    def __init__(self, app: ASGIApp, settings: CorsSettings) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=settings.allow_credentials,
            max_age=settings.max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path in CORS_PATHS or path.startswith(CORS_PREFIXES):
                await self.cors(scope, receive, send)
                return
        await self.app(scope, receive, send)
