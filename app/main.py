"""The Starlette application: the composition root that wires settings, database and schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.http.graphql import graphql_endpoint
from app.http.health import healthz, readyz
from app.state import AppState
from resolvers.schema import schema


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    url = DatabaseUrl.parse(settings.database_url)

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
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
