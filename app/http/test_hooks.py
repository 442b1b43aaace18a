"""Test-only routes, served only when their switch is on (never in production; see app.config)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.state import AppState


async def published_events(request: Request) -> Response:
    """`GET /_test/events` (OG_TEST_EVENT_PROBE=1): the events this process's fanout published,
    oldest first, as a subscriber here would have received them."""
    state: AppState = request.app.state.og
    seen = [] if state.probe is None else state.probe.as_json()
    return JSONResponse({"events": seen}, headers={"Cache-Control": "no-store"})
