"""`/readyz` is 200 only when the database answers and has every migration; `/healthz` is alive."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from app.config import PoolSettings, Settings
from app.db.migrate import known_ids, migrate, rollback_last
from app.db.urls import DatabaseUrl
from app.http import health
from app.main import create_app
from bench.servers import in_process as live_server
from tests.conftest import MakeUrl

READY = {
    "status": "ready",
    "database": "ok",
    "migrations": "ok",
    "broker": "ok",
    "rateLimits": "local",
}
PENDING = {
    "status": "not_ready",
    "database": "ok",
    "migrations": "pending",
    "broker": "ok",
    "rateLimits": "local",
}
UNREACHABLE = {
    "status": "not_ready",
    "database": "unavailable",
    "migrations": "unknown",
    "broker": "ok",
    "rateLimits": "local",
}


@asynccontextmanager
async def _client(url: DatabaseUrl) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=str(url), pool=PoolSettings(size=2, timeout=0.5))
    async with (
        live_server(create_app(settings)) as base,
        httpx.AsyncClient(base_url=base, timeout=30.0) as client,
    ):
        yield client


async def _readyz(client: httpx.AsyncClient) -> tuple[int, object]:
    response = await client.get("/readyz")
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


async def test_ready_when_migrated(backend: str, make_url: MakeUrl) -> None:
    url = make_url(backend, "ready")
    migrate(url)
    async with _client(url) as client:
        assert await _readyz(client) == (200, READY)
        healthz = await client.get("/healthz")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})


async def test_not_ready_while_a_migration_is_pending(backend: str, make_url: MakeUrl) -> None:
    url = make_url(backend, "pending")
    migrate(url)
    assert rollback_last(url) == known_ids()[-1]
    async with _client(url) as client:
        assert await _readyz(client) == (503, PENDING)
        # In a thread: run on the event loop, the migration would wait for SQLite's lock while
        # the server's relay, holding it mid-transaction, waits for the loop.
        await asyncio.to_thread(migrate, url)
        assert await _readyz(client) == (200, READY)


async def test_not_ready_on_a_database_never_migrated(backend: str, make_url: MakeUrl) -> None:
    async with _client(make_url(backend, "unmigrated")) as client:
        assert await _readyz(client) == (503, PENDING)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_not_ready_when_the_database_is_unreachable(kind: str, tmp_path: Path) -> None:
    raw = (
        f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"
        if kind == "sqlite"
        else f"postgresql://postgres@127.0.0.1:{_closed_port()}/og"
    )
    async with _client(DatabaseUrl.parse(raw)) as client:
        assert await _readyz(client) == (503, UNREACHABLE)
        assert (await client.get("/healthz")).status_code == 200


async def test_readyz_reads_migration_files_off_the_event_loop(
    make_url: MakeUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While readyz waits on the migration files, the same server still answers other requests."""
    url = make_url("sqlite", "offloop")
    migrate(url)
    entered, gate = threading.Event(), threading.Event()
    opened: list[bool] = []

    def gated_known_ids() -> tuple[str, ...]:
        entered.set()
        # Run on the event loop, this would freeze the server (and this test) until it timed out.
        opened.append(gate.wait(timeout=10))
        return known_ids()

    monkeypatch.setattr(health, "known_ids", gated_known_ids)
    async with _client(url) as client:
        ready = asyncio.create_task(client.get("/readyz"))
        assert await asyncio.to_thread(entered.wait, 10)
        assert (await client.get("/healthz")).status_code == 200
        gate.set()
        assert (await ready).status_code == 200
    assert opened == [True], "the gate timed out: readyz blocked the event loop"
