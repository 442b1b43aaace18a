"""Each HTTP request, once answered: its duration in /metrics and its access line in the log.

Pure ASGI, just inside the request-ID middleware. The endpoint and the authentication middleware
leave what they learn in the scope's state (`operation`, `principal`); the line is built only
when `app.access` logs at INFO, so a quiet log costs nothing per request. The client address is
the one uvicorn took from a trusted proxy's X-Forwarded-For (FORWARDED_ALLOW_IPS), never the
header as sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.request_id import STATE_KEY
from app.observability import metrics
from app.observability.logs import REQUEST_ID

access_log = logging.getLogger("app.access")

OPERATION_KEY = "operation"
ROUTES = frozenset(
    {
        "/graphql",
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/revoke",
        "/oauth/authorize",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
        "/healthz",
        "/readyz",
        "/metrics",
    }
)
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, int], Any] = {}

    def _histogram(self, route: str, status: int) -> Any:
        key = (route, status // 100)
        child = self._children.get(key)
        if child is None:
            status_class = _STATUS_CLASSES[min(max(status // 100, 1), 5) - 1]
            child = self._children[key] = metrics.HTTP_DURATION.labels(route, status_class)
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        token = REQUEST_ID.set(state.get(STATE_KEY))
        status = 500  # unless a response starts: a crash is answered by the outer middleware

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            path = scope["path"]
            route = path if path in ROUTES else "other"
            self._histogram(route, status).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, state, status, elapsed)
            REQUEST_ID.reset(token)


def _log_access(scope: Scope, state: dict[str, Any], status: int, elapsed: float) -> None:
    client = scope.get("client")
    principal = state.get("principal")
    fields = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "client": client[0] if client else None,
        "principal": principal.kind.value if principal is not None else None,
        "operation": state.get(OPERATION_KEY),
    }
    access_log.info(
        "%s %s %d %.1f ms",
        fields["method"],
        fields["path"],
        status,
        fields["duration_ms"],
        extra={"fields": fields},
    )
