"""A database outage over HTTP: clear SERVICE_UNAVAILABLE errors meanwhile, then full recovery.

The outage is made on this test's own database only: its sessions are terminated and new ones
refused (`ALLOW_CONNECTIONS false`); the shared server keeps running. Every request carries a
client timeout, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.config import CacheSettings, PoolSettings, Settings
from app.db.engine import BUSY_MESSAGE, UNAVAILABLE_MESSAGE
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.http.state import AppState
from app.main import create_app
from app.seed import SeedSize, seed
from bench.servers import in_process as live_server
from tests.conftest import MakeUrl, OpenDb
from tests.graphql import execute
from tests.services import PostgresServer

# Anonymous may read products: the outage is about the database, not about credentials.
QUERY = "{ products(first: 3) { totalCount edges { node { sku price { amount } } } } }"
SMALL = SeedSize(products=4, users=4, orders=6, max_items_per_order=2)
CLIENT_TIMEOUT = 30.0  # far above every server-side bound; reaching it means a hang


@dataclass
class Served:
    client: httpx.AsyncClient
    state: AppState
    url: DatabaseUrl

    async def query(self) -> tuple[int, dict[str, Any]]:
        response = await self.client.post("/graphql", json={"query": QUERY})
        return response.status_code, response.json()


@asynccontextmanager
async def _serve(url: DatabaseUrl, settings: Settings) -> AsyncIterator[Served]:
    app = create_app(settings)
    async with (
        live_server(app) as base,
        httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT) as client,
    ):
        yield Served(client, app.state.og, url)


def _assert_unavailable(status: int, body: dict[str, Any], message: str, url: DatabaseUrl) -> None:
    # The HTTP view decides between 200 and 503 for SERVICE_UNAVAILABLE; never a 500.
    assert status in (200, 503)
    assert body["errors"]
    for error in body["errors"]:
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["message"] == message
    leaked = str(body["errors"])
    assert str(url.url.database) not in leaked
    assert str(url.url.port) not in leaked


@pytest.fixture
async def outage_app(
    request: pytest.FixtureRequest, make_url: MakeUrl, postgres_server: PostgresServer
) -> AsyncIterator[Served]:
    pre_ping: bool = request.param
    url = make_url("postgresql", f"outage_{'ping' if pre_ping else 'noping'}")
    migrate(url)
    settings = Settings(
        database_url=str(url),
        pool=PoolSettings(size=2, max_overflow=0, timeout=1.0, pre_ping=pre_ping),
        statement_timeout_ms=2000,
        # The outage must reach the database: the catalogue cache would answer from memory.
        cache=CacheSettings(enabled=False),
    )
    async with _serve(url, settings) as served:
        await seed(served.state.db, SMALL)
        try:
            yield served
        finally:
            postgres_server.allow_connections(url, True)


@pytest.mark.postgresql
@pytest.mark.parametrize(
    "outage_app", [True, False], ids=["pre_ping", "no_pre_ping"], indirect=True
)
async def test_outage_gives_service_unavailable_then_recovers_without_restart(
    outage_app: Served, postgres_server: PostgresServer
) -> None:
    served = outage_app
    status, before = await served.query()
    assert status == 200
    assert "errors" not in before
    assert (await served.client.get("/readyz")).status_code == 200

    postgres_server.allow_connections(served.url, False)
    assert postgres_server.terminate_connections(served.url) >= 1

    for _ in range(3):  # the pool's dead connections, then refused reconnects
        status, body = await served.query()
        _assert_unavailable(status, body, UNAVAILABLE_MESSAGE, served.url)
    direct = await execute(served.state.db, QUERY)
    assert set(direct.codes) == {"SERVICE_UNAVAILABLE"}
    ready = await served.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not_ready",
        "database": "unavailable",
        "migrations": "unknown",
        "broker": "ok",
        "rateLimits": "local",
    }
    assert (await served.client.get("/healthz")).status_code == 200  # alive, just not ready

    postgres_server.allow_connections(served.url, True)

    status, after = await served.query()
    assert status == 200
    assert after == before
    ready = await served.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
        "rateLimits": "local",
    }


async def test_exhausted_pool_over_http_answers_busy(
    backend: str, make_url: MakeUrl, open_db: OpenDb
) -> None:
    url = make_url(backend, "http_exhausted")
    migrate(url)
    settings = Settings(
        database_url=str(url), pool=PoolSettings(size=1, max_overflow=0, timeout=0.2)
    )
    async with _serve(url, settings) as served:
        async with served.state.db.read():  # the server's only connection, held
            status, body = await served.query()
            _assert_unavailable(status, body, BUSY_MESSAGE, url)
        status, body = await served.query()
        assert status == 200
        assert body["data"] == {"products": {"totalCount": 0, "edges": []}}
        assert "errors" not in body
