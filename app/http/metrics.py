"""GET /metrics on the API's own port, for a scraper holding METRICS_TOKEN (a bearer token).

Without METRICS_TOKEN the route does not exist here; METRICS_PORT serves the same text on a
separate listener instead (app.server), bound to METRICS_HOST (loopback unless told otherwise), so
the metrics are never public by accident.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.observability import metrics


def metrics_route(token: str) -> Route:
    expected = f"Bearer {token}".encode()

    async def endpoint(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(
                "metrics need the bearer token METRICS_TOKEN\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                media_type="text/plain",
            )
        return Response(
            metrics.render(),
            headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    return Route("/metrics", endpoint, methods=["GET"])
