"""Liveness and readiness probes for orchestrators and load balancers.

`/healthz` says the process answers; restarting it would not help when the database is away, so
it never looks there. `/readyz` says whether to send it traffic: the database answers and has
every migration this code expects. It also reports the event broker (`ok`, `degraded` when Redis
is unreachable, `off` when this process runs none), but a broker outage alone keeps the answer
200: queries and mutations work without it, and the relay catches up when it returns.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db.migrate import known_ids
from app.errors import ServiceUnavailable
from app.http.state import AppState
from app.repositories import health

_NO_STORE = {"Cache-Control": "no-store"}
# A probe must answer quickly; a broker slower than this to answer a PING counts as degraded.
BROKER_CHECK_SECONDS = 1.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.og
    # Reading the migration files is blocking file I/O (once per process; cached after that).
    expected = await asyncio.to_thread(known_ids)
    parts = {"broker": await _broker_status(state), "rateLimits": state.auth.limiter.status}
    try:
        async with state.db.read() as conn:
            applied = await health.applied_migration_ids(conn)
    except ServiceUnavailable:
        return _not_ready(database="unavailable", migrations="unknown", **parts)
    if any(migration_id not in applied for migration_id in expected):
        return _not_ready(database="ok", migrations="pending", **parts)
    return JSONResponse(
        {"status": "ready", "database": "ok", "migrations": "ok", **parts},
        headers=_NO_STORE,
    )


async def _broker_status(state: AppState) -> str:
    if state.broker is None:
        return "off"
    try:
        health = await asyncio.wait_for(state.broker.health(), BROKER_CHECK_SECONDS)
    except TimeoutError:
        return "degraded"
    if state.relay is not None and state.relay.broker_unavailable:
        return "degraded"
    return health


def _not_ready(*, database: str, migrations: str, **parts: str) -> Response:
    return JSONResponse(
        {"status": "not_ready", "database": database, "migrations": migrations, **parts},
        status_code=503,
        headers=_NO_STORE,
    )
