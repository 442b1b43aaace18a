"""The app over HTTP: in-process through httpx's ASGI transport, or as a real uvicorn server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import uuid4

import httpx
import pytest
from starlette.applications import Starlette

from app.auth.scopes import ALL_SCOPES
from app.config import CacheSettings, GraphQLLimits, Settings
from app.db.engine import Database
from app.http.state import AppState
from app.main import create_app
from app.seed import SeedSize
from tests.conftest import MakeDb

SMALL = SeedSize(products=5, users=6, orders=12, max_items_per_order=2)


@dataclasses.dataclass
class Api:
    """A client for one app instance, and that instance's state (to break its database)."""

    client: httpx.AsyncClient
    app: Starlette

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.og
        return state

    async def post(
        self, body: Any, accept: str | None = "application/graphql-response+json", **kw: Any
    ) -> httpx.Response:
        headers = {"content-type": "application/json", **kw.pop("headers", {})}
        if accept is not None:
            headers["accept"] = accept
        return await self.client.post("/graphql", json=body, headers=headers, **kw)

    async def admin(self) -> dict[str, str]:
        """Headers authenticating as an admin: a JWT minted by this app's own signing key."""
        token, _ = self.state.auth.tokens.mint(
            client_id="http-tests", user_id=uuid4(), scope=" ".join(sorted(ALL_SCOPES))
        )
        return {"authorization": f"Bearer {token}"}


ApiFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture(scope="session")
async def http_db(make_db: MakeDb) -> Database:
    """A small seeded SQLite database the HTTP tests read (never write)."""
    return await make_db("sqlite", "http", SMALL)


@pytest.fixture(scope="session")
def api_factory(http_db: Database) -> ApiFactory:
    """Starts the app (lifespan included) with the given limits and settings."""

    @asynccontextmanager
    async def make(
        debug: bool = False, executor: str = "levels", **limits: Any
    ) -> AsyncIterator[Api]:
        limits.setdefault("introspection", True)
        settings = Settings(
            database_url=str(http_db.url),
            debug=debug,
            graphql=GraphQLLimits(**limits),
            # These tests break the database under a running app and count statements; the
            # catalogue cache (tests/e2e/test_catalogue_cache.py) would answer from memory.
            cache=CacheSettings(enabled=False),
            graphql_executor=executor,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Api(c, app)

    return make


@pytest.fixture
async def api(api_factory: ApiFactory) -> AsyncIterator[Api]:
    async with api_factory() as made:
        yield made
