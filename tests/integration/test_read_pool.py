"""The PostgreSQL read pool (app.db.driver.DriverPool): what it lends, keeps, closes and waits for.

Each test watches the server side (backend process IDs, pg_stat_activity), so it checks what the
database sees, not the pool's own bookkeeping. Waits are on conditions, each with a deadline.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from app.config import PoolSettings, Settings
from app.db.engine import BUSY_MESSAGE, Database
from app.db.urls import DatabaseUrl
from app.errors import ServiceUnavailable
from tests.conftest import MakeUrl, OpenDb
from tests.events_support import wait_for

pytestmark = pytest.mark.postgresql

DEADLINE = 20.0


async def _pid(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _backends(url: DatabaseUrl, watcher: Database) -> int:
    """Connections the app's pools hold to `url`'s database, as the server counts them."""
    async with watcher.write() as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :name "
                "AND application_name = 'ordergraph' AND pid <> pg_backend_pid()"
            ),
            {"name": url.url.database},
        )
        return int(found.scalar_one())


def _settings(
    size: int = 2, max_overflow: int = 0, timeout: float = 5.0, recycle: int = 3600
) -> Settings:
    return Settings(
        pool=PoolSettings(size=size, max_overflow=max_overflow, timeout=timeout, recycle=recycle)
    )


async def test_a_returned_connection_is_lent_again(make_url: MakeUrl, open_db: OpenDb) -> None:
    db = open_db(make_url("postgresql", "pool_reuse"), _settings(size=2))

    first = await _pid(db)

    assert await _pid(db) == first
    assert await _pid(db) == first


async def test_connections_opened_beyond_the_pool_size_are_closed_when_returned(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    url = make_url("postgresql", "pool_overflow")
    db = open_db(url, _settings(size=1, max_overflow=2, recycle=3600))
    watcher = open_db(url, _settings(size=1, max_overflow=0))
    held = asyncio.Event()
    release = asyncio.Event()
    pids: list[int] = []

    async def borrow() -> None:
        async with db.read() as conn:
            pids.append(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            if len(pids) == 3:
                held.set()
            await release.wait()

    tasks = [asyncio.create_task(borrow()) for _ in range(3)]
    async with asyncio.timeout(DEADLINE):
        await held.wait()
    assert len(set(pids)) == 3, "three borrowers at once, three connections"
    assert await _backends(url, watcher) == 3
    release.set()
    await asyncio.gather(*tasks)

    async def one_left() -> bool:
        return await _backends(url, watcher) == 1

    await wait_for(one_left, "only DB_POOL_SIZE connections stay open")
    assert await _pid(db) in pids


async def test_a_borrower_over_the_limit_waits_for_a_returned_connection(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    db = open_db(make_url("postgresql", "pool_wait"), _settings(size=1, max_overflow=0))
    got: list[int] = []

    async with db.read() as conn:
        mine = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        waiting = asyncio.create_task(_pid(db))
        await asyncio.sleep(0.1)
        assert not waiting.done(), "the only connection is lent: the borrower waits"
    got.append(await asyncio.wait_for(waiting, DEADLINE))

    assert got == [mine], "the returned connection went to the waiting borrower"


async def test_a_borrower_waits_no_longer_than_the_pool_timeout(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    db = open_db(
        make_url("postgresql", "pool_timeout"), _settings(size=1, max_overflow=0, timeout=0.2)
    )

    async with db.read():
        with pytest.raises(ServiceUnavailable) as raised:
            await asyncio.wait_for(_pid(db), DEADLINE)
    assert raised.value.message == BUSY_MESSAGE

    await _pid(db)  # and the pool lends again once the connection is back


async def test_a_cancelled_statement_never_returns_its_connection_to_the_pool(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    db = open_db(make_url("postgresql", "pool_cancel"), _settings(size=1, max_overflow=0))
    before = await _pid(db)
    started = asyncio.Event()

    async def sleeper() -> None:
        async with db.read() as conn:
            started.set()
            await conn.execute(text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(sleeper())
    async with asyncio.timeout(DEADLINE):
        await started.wait()
    await asyncio.sleep(0.05)  # the statement is on its way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Its slot is free at once, and the next borrower gets a fresh connection, not one with a
    # statement still running on it.
    after = await asyncio.wait_for(_pid(db), DEADLINE)
    assert after != before


async def test_idle_connections_are_closed_after_the_recycle_time(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    url = make_url("postgresql", "pool_recycle")
    db = open_db(url, _settings(size=2, recycle=1))
    watcher = open_db(url, _settings(size=1, max_overflow=0))
    await _pid(db)
    assert await _backends(url, watcher) == 1

    async def none_left() -> bool:
        return await _backends(url, watcher) == 0

    await wait_for(none_left, "an idle connection is closed after DB_POOL_RECYCLE")
    await _pid(db)  # and a new one is opened when needed


async def test_closing_the_pool_waits_for_lent_connections(
    make_url: MakeUrl, open_db: OpenDb
) -> None:
    url = make_url("postgresql", "pool_close")
    db = open_db(url, _settings(size=2))
    watcher = open_db(url, _settings(size=1, max_overflow=0))
    await _pid(db)  # one idle connection

    async with db.read() as conn:
        closing = asyncio.create_task(db.dispose())
        await asyncio.sleep(0.1)
        assert not closing.done(), "a lent connection is waited for"
        await conn.execute(text("SELECT 1"))  # still usable while the pool closes
    await asyncio.wait_for(closing, DEADLINE)

    assert await _backends(url, watcher) == 0
    with pytest.raises(ServiceUnavailable):
        await _pid(db)
