"""Liveness and readiness probes for orchestrators and load balancers.

`/healthz` says the process answers; restarting it would not help when the database is away, so
it never looks there. `/readyz` says whether to send it traffic: the database answers and has
every migration this code expects.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db.migrate import known_ids
from app.errors import ServiceUnavailable
from app.repositories import health
from app.state import AppState

_NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.og
    # Reading the migration files is blocking file I/O (once per process; cached after that).
    expected = await asyncio.to_thread(known_ids)
    try:
        async with state.db.read() as conn:
            applied = await health.applied_migration_ids(conn)
    except ServiceUnavailable:
        return _not_ready(database="unavailable", migrations="unknown")
    if any(migration_id not in applied for migration_id in expected):
        return _not_ready(database="ok", migrations="pending")
    return JSONResponse(
        {"status": "ready", "database": "ok", "migrations": "ok"}, headers=_NO_STORE
    )


def _not_ready(*, database: str, migrations: str) -> Response:
    return JSONResponse(
        {"status": "not_ready", "database": database, "migrations": migrations},
        status_code=503,
        headers=_NO_STORE,
    )
