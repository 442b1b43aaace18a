"""The Starlette application: the composition root that wires settings, database and schema."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.http.graphql import PreparedDocument, graphql_endpoint_for
from app.http.limits import BodyLimitMiddleware
from app.http.request_id import RequestIdMiddleware
from app.state import AppState
from resolvers.schema import build_schema


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. Readiness (database, migrations) is /readyz's job."""
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    url = DatabaseUrl.parse(settings.database_url)
    schema = build_schema(extensions=[PreparedDocument])
    # app.http.errors logs every internal error once, with its request ID; Strawberry would also
    # log every error, clients' mistakes included, at ERROR level.
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(url, settings)
        app.state.og = AppState(settings=settings, db=db, schema=schema)
        try:
            yield
        finally:
            await db.dispose()

    return Starlette(
        debug=False,
        routes=[
            # GraphiQL (or any in-browser page) plugs in as `html_page`: GETs preferring text/html.
            Route("/graphql", graphql_endpoint_for(html_page=None), methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[
            # Outermost first: every response, even a refusal or a crash, gets its request ID.
            Middleware(RequestIdMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.graphql.max_body_bytes),
        ],
        lifespan=lifespan,
    )
