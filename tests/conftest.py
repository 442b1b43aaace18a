"""Databases for the tests: SQLite files and this run's PostgreSQL databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import PoolSettings, Settings
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.seed import DEMO, SeedSize, seed
from tests.auth_support import AuthApp, running_app
from tests.oauth_flow import Flow
from tests.services import PostgresServer, when_the_server_has_room

# Session-long databases keep one idle connection (a run makes dozens of databases, several runs
# may share the server, and it allows 100 connections by default) and, like the default pool,
# open at most 15 at once. The PostgreSQL read pool (app.db.driver) keeps none: it closes a
# connection idle for `recycle` seconds, and with the default half hour every database would hold
# a second idle connection for the rest of the run.
TEST_POOL = PoolSettings(size=1, max_overflow=14, timeout=10.0, recycle=5)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]

MakeUrl = Callable[[str, str], DatabaseUrl]
MakeDb = Callable[..., Awaitable[Database]]
OpenDb = Callable[[DatabaseUrl, Settings], Database]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    if server.created:
        server.drop_all()


@pytest.fixture(scope="session")
def make_url(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> MakeUrl:
    """An empty database of the given backend, new for each label."""

    def make(backend: str, label: str) -> DatabaseUrl:
        if backend == "sqlite":
            path = Path(tmp_path_factory.mktemp("db")) / f"{label}.sqlite3"
            return DatabaseUrl.parse(f"sqlite:///{path}")
        postgres_server.check()
        return postgres_server.create_database(label)

    return make


@pytest.fixture(scope="session")
async def make_db(make_url: MakeUrl) -> AsyncIterator[MakeDb]:
    """A migrated database, seeded with a data set of the given size if one is given."""
    made: list[Database] = []

    async def make(
        backend: str, label: str, size: SeedSize | None = None, seed_value: int = 2026
    ) -> Database:
        url = make_url(backend, label)
        when_the_server_has_room(lambda: migrate(url))  # yoyo connects with psycopg
        db = Database(url, Settings(database_url=str(url), pool=TEST_POOL))
        made.append(db)
        if size is not None:
            await seed(db, size, seed=seed_value)
        return db

    yield make
    for db in made:
        await db.dispose()


@pytest.fixture
async def open_db() -> AsyncIterator[OpenDb]:
    """A Database on the given URL with the given settings, disposed of after the test."""
    made: list[Database] = []

    def open_(url: DatabaseUrl, settings: Settings) -> Database:
        db = Database(url, replace(settings, database_url=str(url)))
        made.append(db)
        return db

    yield open_
    for db in made:
        await db.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def demo_db(backend: str, make_db: MakeDb) -> Database:
    """The demo data set on each backend, shared read-only by the tests of this run."""
    return await make_db(backend, "demo", DEMO)


@pytest.fixture(scope="session")
async def auth_app(backend: str, make_db: MakeDb) -> AsyncIterator[AuthApp]:
    """The app on a small seeded database of each backend, with a test signing key."""
    db = await make_db(backend, "auth", SeedSize(products=5, users=10, orders=30))
    async with running_app(db.url) as app:
        yield app


@pytest.fixture
async def flow(auth_app: AuthApp) -> AsyncIterator[Flow]:
    """A fresh browser (cookie jar) and a confidential authorization-code client."""
    from tests.oauth_flow import code_client, pkce

    verifier, challenge = pkce()
    async with auth_app.browser() as browser:
        yield Flow(auth_app, browser, await code_client(auth_app), verifier, challenge)
