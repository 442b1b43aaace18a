"""Each HTTP request, once answered: its duration in /metrics and its access line in the log.

Recorded by the edge (app.http.edge). The endpoint and the authentication leave what they learn
in the scope's state (`operation`, `principal`); the line is built only
when `app.access` logs at INFO, so a quiet log costs nothing per request. The client address is
the one uvicorn took from a trusted proxy's X-Forwarded-For (FORWARDED_ALLOW_IPS), never the
header as sent.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import Scope

from app.observability import metrics

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


class RequestLog:
    """Records answered HTTP requests (app.http.edge calls it once each)."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, int], Any] = {}

    def _histogram(self, route: str, status: int) -> Any:
        key = (route, status // 100)
        child = self._children.get(key)
        if child is None:
            status_class = _STATUS_CLASSES[min(max(status // 100, 1), 5) - 1]
            child = self._children[key] = metrics.HTTP_DURATION.labels(route, status_class)
        return child

    def record(self, scope: Scope, state: dict[str, Any], status: int, elapsed: float) -> None:
        path = scope["path"]
        self._histogram(path if path in ROUTES else "other", status).observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            _log_access(scope, state, status, elapsed)


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
