"""The Starlette application: the composition root that wires settings, database and schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from app.auth.services import AuthServices
from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.http import oauth
from app.http.auth_middleware import AuthMiddleware
from app.http.graphiql import NODE_MODULES, create_graphiql
from app.http.graphql import graphql_endpoint
from app.http.health import healthz, readyz
from app.state import AppState
from resolvers.schema import schema


def create_app(settings: Settings | None = None, *, node_modules: Path = NODE_MODULES) -> Starlette:
    settings = settings or Settings.from_env()
    url = DatabaseUrl.parse(settings.database_url)
    graphiql = create_graphiql(settings, node_modules)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(url, settings)
        auth = AuthServices.create(settings, db)
        app.state.og = AppState(settings=settings, db=db, schema=schema, auth=auth)
        await auth.start()
        try:
            yield
        finally:
            await auth.close()
            await db.dispose()

    app = Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *oauth.routes,
            *(graphiql.routes() if graphiql else []),
        ],
        middleware=[Middleware(AuthMiddleware, paths=("/graphql",))],
        lifespan=lifespan,
    )
    # Read by the GraphQL endpoint's first step, graphiql_response; None turns GraphiQL off.
    app.state.graphiql = graphiql
    return app
