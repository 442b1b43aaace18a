"""The Starlette application: the composition root that wires settings, database and schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.email import sender_from
from app.http.graphql import graphql_endpoint
from app.messaging import handlers
from app.messaging.bus import EventBus, logging_middleware
from app.messaging.dispatcher import Dispatcher
from app.state import AppState
from resolvers.schema import schema


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. Readiness (database, migrations) is /readyz's job."""
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    url = DatabaseUrl.parse(settings.database_url)
    email_sender = sender_from(settings.smtp_url, settings.email_from)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(url, settings)
        bus = EventBus([logging_middleware])
        handlers.register(bus, db, email_sender)
        dispatcher = Dispatcher(db, bus)
        app.state.og = AppState(settings=settings, db=db, schema=schema, dispatcher=dispatcher)
        await dispatcher.start()  # first catches up on events stored before this start
        try:
            yield
        finally:
            await dispatcher.stop()
            await db.dispose()

    return Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
