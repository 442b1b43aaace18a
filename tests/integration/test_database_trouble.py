"""Database trouble reaches clients as SERVICE_UNAVAILABLE with a message naming nothing internal.

Every case is bounded by a configured timeout, so a test that hung would be a failing test.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from app.config import PoolSettings, Settings
from app.db.engine import BUSY_MESSAGE, TOO_SLOW_MESSAGE, UNAVAILABLE_MESSAGE, Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.errors import ServiceUnavailable
from tests.conftest import MakeUrl, OpenDb
from tests.graphql import execute

QUERY = "{ products(first: 2) { edges { node { sku } } } }"
TINY_POOL = Settings(pool=PoolSettings(size=1, max_overflow=0, timeout=0.2))
SILENT_SERVER_BOUND = 20.0


def _only_service_unavailable(errors: list[dict[str, object]], message: str) -> None:
    assert errors
    for error in errors:
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
        assert error["message"] == message


async def _read(db: Database, *statements: str) -> object:
    """Run SQL through Database.read() as a repository would; the last statement's value."""
    value: object = None
    async with db.read() as conn:
        for statement in statements:
            result = await conn.execute(text(statement))
            value = result.scalar() if statement.startswith("SELECT") else None
    return value


def _migrated(
    make_url: MakeUrl, open_db: OpenDb, backend: str, label: str, settings: Settings
) -> tuple[DatabaseUrl, Database]:
    url = make_url(backend, label)
    migrate(url)
    return url, open_db(url, settings)


async def test_an_exhausted_pool_answers_busy_then_recovers(
    backend: str, make_url: MakeUrl, open_db: OpenDb
) -> None:
    _, db = _migrated(make_url, open_db, backend, "exhausted", TINY_POOL)

    async with db.read() as held:  # the pool's only connection
        await held.execute(text("SELECT 1"))
        result = await execute(db, QUERY)
        _only_service_unavailable(result.errors, BUSY_MESSAGE)

    assert (await execute(db, QUERY)).ok() == {"products": {"edges": []}}


@pytest.mark.postgresql
async def test_statement_timeout_answers_too_slow(make_url: MakeUrl, open_db: OpenDb) -> None:
    settings = replace(TINY_POOL, statement_timeout_ms=100)
    _, db = _migrated(make_url, open_db, "postgresql", "stmt_timeout", settings)

    with pytest.raises(ServiceUnavailable) as raised:
        await _read(db, "SELECT pg_sleep(30)")
    assert raised.value.message == TOO_SLOW_MESSAGE
    assert isinstance(raised.value.__cause__, sa_exc.DBAPIError)

    assert await _read(db, "SELECT 1") == 1  # the pool's one connection is still good


@pytest.mark.postgresql
async def test_a_server_that_stops_answering_is_cut_off_by_the_client(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    """With the server-side timeout lifted, asyncpg's command_timeout still bounds the wait."""
    settings = replace(TINY_POOL, statement_timeout_ms=100)  # client gives up after 2.1 s
    _, db = _migrated(make_url, open_db, "postgresql", "cmd_timeout", settings)

    with pytest.raises(ServiceUnavailable) as raised:
        await _read(db, "SET statement_timeout = 0", "SELECT pg_sleep(60)")
    assert raised.value.message == TOO_SLOW_MESSAGE
    assert isinstance(raised.value.__cause__, TimeoutError)


async def test_a_locked_sqlite_database_answers_busy(make_url: MakeUrl, open_db: OpenDb) -> None:
    url, db = _migrated(
        make_url, open_db, "sqlite", "locked", replace(TINY_POOL, statement_timeout_ms=50)
    )
    other = sqlite3.connect(url.sqlite_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        with pytest.raises(ServiceUnavailable) as raised:
            async with db.write() as conn:
                await conn.execute(text("CREATE TABLE lock_probe (x INTEGER)"))
        assert raised.value.message == BUSY_MESSAGE
    finally:
        other.close()

    async with db.write() as conn:  # the lock is gone, and so is the trouble
        await conn.execute(text("CREATE TABLE lock_probe (x INTEGER)"))


@contextmanager
def _free_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


@contextmanager
def _silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (in the kernel's backlog) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


async def test_a_refused_connection_answers_unavailable(
    open_db: OpenDb, caplog: pytest.LogCaptureFixture
) -> None:
    with _free_port() as port:
        url = DatabaseUrl.parse(f"postgresql://postgres@127.0.0.1:{port}/og_secret_name")
        with caplog.at_level(logging.WARNING, logger="app.db"):
            result = await execute(open_db(url, TINY_POOL), QUERY)

    _only_service_unavailable(result.errors, UNAVAILABLE_MESSAGE)
    assert str(port) not in str(result.errors)
    assert "og_secret_name" not in str(result.errors)
    # Operators, unlike clients, are told what happened.
    trouble = [r.getMessage() for r in caplog.records if r.name == "app.db"]
    assert trouble
    assert all(m.startswith("database trouble while connecting: ") for m in trouble)
    assert any(str(port) in m for m in trouble)


async def test_connecting_to_a_silent_server_is_bounded_by_the_pool_timeout(
    open_db: OpenDb,
) -> None:
    with _silent_server() as port:
        url = DatabaseUrl.parse(f"postgresql://postgres@127.0.0.1:{port}/og")
        # The pool's timeout (0.2 s) bounds the connect; unbounded, asyncpg would wait 60 s.
        # The bound asserted here is generous, so a loaded machine cannot fail it by luck.
        async with asyncio.timeout(SILENT_SERVER_BOUND):
            result = await execute(open_db(url, TINY_POOL), QUERY)

    _only_service_unavailable(result.errors, TOO_SLOW_MESSAGE)


async def test_an_unopenable_sqlite_file_answers_unavailable(
    open_db: OpenDb, tmp_path: Path
) -> None:
    url = DatabaseUrl.parse(f"sqlite:///{tmp_path}/no/such/dir/db.sqlite3")

    result = await execute(open_db(url, TINY_POOL), QUERY)

    _only_service_unavailable(result.errors, UNAVAILABLE_MESSAGE)
    assert "no/such/dir" not in str(result.errors)


async def test_a_failing_statement_is_a_bug_not_an_outage(
    backend: str, make_url: MakeUrl, open_db: OpenDb
) -> None:
    _, db = _migrated(make_url, open_db, backend, "bug", TINY_POOL)

    with pytest.raises(sa_exc.DBAPIError):
        await _read(db, "SELECT * FROM no_such_table")

    assert await _read(db, "SELECT 1") == 1
