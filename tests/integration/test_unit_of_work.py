"""The unit of work on both databases: all or nothing, versions, lock waits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from app.config import Settings
from app.db.engine import Database
from app.domain.events import EventType, StreamType, new_event
from app.errors import ConcurrencyConflict, DatabaseBusy
from app.repositories.unit_of_work import SqlUnitOfWork
from tests.conftest import MakeDb
from tests.integration.helpers import add_product, count_rows, new_shop, stock_of

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _event(stream: uuid.UUID, version: int = 1) -> Any:
    return new_event(EventType.PRODUCT_UPDATED, StreamType.PRODUCT, stream, version, {}, NOW)


async def test_state_and_events_commit_together(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "uow_commit")
    product = await add_product(shop.db, stock=5)
    seen: list[list[Any]] = []
    async with SqlUnitOfWork(shop.db, after_commit=seen.append) as uow:
        await uow.products.move_stock(product.id, -2, NOW)
        await uow.record(_event(product.id, 2))
    assert await stock_of(shop.db, product.id) == 3
    assert await count_rows(shop.db, "events", stream_id=product.id) == 2
    assert [e.version for e in seen[0]] == [2], "after-commit hooks get the work's events"


async def test_any_exception_rolls_back_state_and_events(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "uow_rollback")
    product = await add_product(shop.db, stock=5)
    seen: list[list[Any]] = []

    async def failing_work() -> None:
        async with SqlUnitOfWork(shop.db, after_commit=seen.append) as uow:
            await uow.products.move_stock(product.id, -2, NOW)
            await uow.record(_event(product.id, 2))
            raise RuntimeError("injected before commit")

    with pytest.raises(RuntimeError, match="injected"):
        await failing_work()
    assert await stock_of(shop.db, product.id) == 5
    assert await count_rows(shop.db, "events", stream_id=product.id) == 1
    assert seen == []


async def test_a_taken_stream_version_is_a_concurrency_conflict(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "uow_versions")
    stream = uuid.uuid4()
    async with SqlUnitOfWork(shop.db) as uow:
        await uow.record(_event(stream, 1))
        assert await uow.events.last_version(stream) == 1

    async def stale_work() -> None:
        async with SqlUnitOfWork(shop.db) as uow:
            await uow.record(_event(stream, 2))
            await uow.record(_event(stream, 1))

    with pytest.raises(ConcurrencyConflict):
        await stale_work()
    assert await count_rows(shop.db, "events", stream_id=stream) == 1


async def test_sqlite_writers_queue_instead_of_failing(make_db: MakeDb) -> None:
    shop = await new_shop(make_db, "sqlite", "uow_queue")
    product = await add_product(shop.db, stock=100)
    first_inside = asyncio.Event()
    release = asyncio.Event()
    begins: list[object] = []
    second_begins = asyncio.Event()
    loop = asyncio.get_running_loop()

    @event.listens_for(shop.db.engine.sync_engine, "before_cursor_execute")
    def _count_begins(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":  # sent next; a second writer waits in it
            begins.append(conn)
            if len(begins) == 2:
                loop.call_soon_threadsafe(second_begins.set)

    # Whether the first writer had been let go when each BEGIN IMMEDIATE returned.
    granted_after_release: list[bool] = []

    @event.listens_for(shop.db.engine.sync_engine, "after_cursor_execute")
    def _note_grants(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            granted_after_release.append(release.is_set())

    async def slow_writer() -> None:
        async with SqlUnitOfWork(shop.db) as uow:
            await uow.products.move_stock(product.id, -1, NOW)
            first_inside.set()
            await release.wait()

    async def second_writer() -> None:
        await first_inside.wait()
        async with SqlUnitOfWork(shop.db) as uow:
            await uow.products.move_stock(product.id, -1, NOW)

    slow = asyncio.create_task(slow_writer())
    second = asyncio.create_task(second_writer())
    await first_inside.wait()
    async with asyncio.timeout(10):
        await second_begins.wait()  # the second writer has reached BEGIN IMMEDIATE
    # Room for a second writer that did not wait to get through; the verdict below does not
    # depend on it, only how surely a broken lock shows.
    await asyncio.sleep(0.05)
    assert await stock_of(shop.db, product.id) == 100, "nothing is committed yet"
    release.set()
    await asyncio.gather(slow, second)
    assert granted_after_release == [False, True], "the second writer waited for the first's lock"
    assert await stock_of(shop.db, product.id) == 98


async def test_sqlite_lock_timeout_is_a_retryable_error(make_db: MakeDb) -> None:
    shop = await new_shop(make_db, "sqlite", "uow_busy")
    impatient = Database(shop.db.url, Settings(database_url=str(shop.db.url)))

    @event.listens_for(impatient.engine.sync_engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=20")
        cursor.close()

    try:
        async with SqlUnitOfWork(shop.db):
            with pytest.raises(DatabaseBusy) as error:
                async with SqlUnitOfWork(impatient):
                    pass
        assert error.value.code == "SERVICE_UNAVAILABLE"
    finally:
        await impatient.dispose()


async def test_sqlite_cancelled_mid_statement_returns_its_connection_and_lock(
    make_db: MakeDb,
) -> None:
    """The execution timeout cancels a unit of work while SQLite runs its statement: the
    connection must come back to the pool and the write lock must go with the rollback."""
    shop = await new_shop(make_db, "sqlite", "uow_cancel")
    db = Database(shop.db.url, Settings(database_url=str(shop.db.url)))
    entered, release = threading.Event(), threading.Event()

    def block() -> int:
        entered.set()
        release.wait(10)
        return 1

    @event.listens_for(db.engine.sync_engine, "connect")
    def _blocking_function(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.create_function("og_block", 0, block)

    cancelled_stream, later_stream = uuid.uuid4(), uuid.uuid4()

    async def work() -> None:
        async with SqlUnitOfWork(db) as uow:
            await uow.record(_event(cancelled_stream))
            await uow.connection.exec_driver_sql("SELECT og_block()")

    try:
        task = asyncio.create_task(work())
        assert await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        # The write lock is free: a writer that will not wait at all gets it.
        other = sqlite3.connect(shop.db.url.sqlite_path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        async with SqlUnitOfWork(db) as uow:
            await uow.record(_event(later_stream))
        assert await count_rows(db, "events", stream_id=later_stream) == 1
        assert await count_rows(db, "events", stream_id=cancelled_stream) == 0
    finally:
        release.set()
        await db.dispose()
