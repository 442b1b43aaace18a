"""The pool and timeout variables reach the engine, and slow statements are logged."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from app.config import Settings
from tests.conftest import MakeUrl, OpenDb

POOL_ENV = {
    "DB_POOL_SIZE": "3",
    "DB_POOL_MAX_OVERFLOW": "2",
    "DB_POOL_TIMEOUT": "1.5",
    "DB_POOL_RECYCLE": "120",
    "DB_POOL_PRE_PING": "false",
    "DB_STATEMENT_TIMEOUT_MS": "1234",
}


async def test_pool_variables_reach_the_engine(
    backend: str, make_url: MakeUrl, open_db: OpenDb
) -> None:
    url = make_url(backend, "pool_env")
    db = open_db(url, Settings.from_env({"DATABASE_URL": str(url), **POOL_ENV}))

    pool = db.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() == 3
    assert pool.timeout() == 1.5
    assert pool._max_overflow == 2
    assert pool._recycle == 120
    assert pool._pre_ping is False


async def test_statement_timeout_reaches_the_session(
    backend: str, make_url: MakeUrl, open_db: OpenDb
) -> None:
    url = make_url(backend, "timeout_env")
    db = open_db(url, Settings.from_env({"DATABASE_URL": str(url), **POOL_ENV}))

    async with db.read() as conn:
        if backend == "postgresql":
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar() == "1234ms"
        else:
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 1234


@pytest.mark.parametrize(("threshold", "logged"), [("0", True), ("3600", False)])
async def test_slow_statements_are_logged_with_their_duration(
    backend: str,
    make_url: MakeUrl,
    open_db: OpenDb,
    caplog: pytest.LogCaptureFixture,
    threshold: str,
    logged: bool,
) -> None:
    url = make_url(backend, f"slow_{threshold}")
    env = {"DATABASE_URL": str(url), "DB_SLOW_STATEMENT_SECONDS": threshold}
    db = open_db(url, Settings.from_env(env))
    async with db.read() as conn:
        await conn.execute(text("SELECT 1"))  # connect first: its own statements are not ours
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="app.db"):
        async with db.read() as conn:
            await conn.execute(text("SELECT 42 AS answer"))

    slow = [r for r in caplog.records if r.name == "app.db" and "slow statement" in r.message]
    if not logged:
        assert slow == []
        return
    assert len(slow) == 1
    assert slow[0].levelno == logging.WARNING
    assert "SELECT 42 AS answer" in slow[0].message
    seconds = slow[0].args[0]  # type: ignore[index]
    assert isinstance(seconds, float)
    assert seconds >= 0
    assert f"({seconds:.3f} s)" in slow[0].message
