"""The async engine, its pool, and the per-request statement statistics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.config import Settings
from app.db.urls import DatabaseUrl
from app.errors import DatabaseBusy

log = logging.getLogger("app.db")


@dataclass
class StatementStats:
    """Statements and their time for one unit of work, such as a GraphQL request."""

    statements: int = 0
    seconds: float = 0.0


_current_stats: ContextVar[StatementStats | None] = ContextVar("statement_stats", default=None)


@contextmanager
def track_statements() -> Iterator[StatementStats]:
    """Count the statements issued from this context (and tasks started from it)."""
    stats = StatementStats()
    token = _current_stats.set(stats)
    try:
        yield stats
    finally:
        _current_stats.reset(token)


class Database:
    """One engine per process; connections are borrowed per operation and returned at once."""

    def __init__(self, url: DatabaseUrl, settings: Settings) -> None:
        self.url = url
        self.dialect = url.dialect
        self._slow_seconds = settings.slow_statement_seconds
        self.engine = _create_engine(url, settings)
        self._install_listeners(self.engine)
        # Reads need no transaction: autocommit saves the BEGIN/ROLLBACK round trips.
        self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction: committed if the block ends, else rolled back.

        On SQLite the transaction starts with BEGIN IMMEDIATE, which takes the write lock up
        front: concurrent writers queue on the busy timeout instead of failing half-way with
        "database is locked" when a deferred transaction tries to upgrade its read lock. A lock
        not granted in time, here or on PostgreSQL, becomes `DatabaseBusy`, which callers retry.
        """
        try:
            if self.dialect == "sqlite":
                async with self._sqlite_immediate() as connection:
                    yield connection
            else:
                async with self.engine.begin() as connection:
                    yield connection
        except DBAPIError as error:
            if _is_lock_timeout(error):
                raise DatabaseBusy("The database is busy; please retry") from error
            raise

    @asynccontextmanager
    async def _sqlite_immediate(self) -> AsyncIterator[AsyncConnection]:
        # The driver must not begin transactions of its own, so the autocommit engine is used
        # and the transaction is spelt out.
        async with self._read_engine.connect() as connection:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                await _sqlite_rollback(connection)
                raise
            try:
                await connection.exec_driver_sql("COMMIT")
            except BaseException:
                await _sqlite_rollback(connection)
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()

    def _install_listeners(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["og_started"] = time.perf_counter()

        @event.listens_for(sync_engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            elapsed = time.perf_counter() - conn.info.pop("og_started", time.perf_counter())
            stats = _current_stats.get()
            if stats is not None:
                stats.statements += 1
                stats.seconds += elapsed
            if elapsed >= self._slow_seconds:
                log.warning("slow statement (%.3f s): %s", elapsed, " ".join(statement.split()))

        if self.dialect == "sqlite":

            @event.listens_for(sync_engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=5000")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()


# lock_not_available, deadlock_detected, serialization_failure, query_canceled (statement_timeout)
_PG_RETRYABLE = frozenset({"55P03", "40P01", "40001", "57014"})


def _is_lock_timeout(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_RETRYABLE
    message = str(error.orig).lower()
    return "database is locked" in message or "database is busy" in message


async def _sqlite_rollback(connection: AsyncConnection) -> None:
    """Roll back unless SQLite already did (it does so by itself after some errors)."""
    try:
        await connection.exec_driver_sql("ROLLBACK")
    except DBAPIError as error:
        if "no transaction is active" not in str(error.orig):
            raise


def _create_engine(url: DatabaseUrl, settings: Settings) -> AsyncEngine:
    pool = settings.pool
    options: dict[str, Any] = {
        "pool_size": pool.size,
        "max_overflow": pool.max_overflow,
        "pool_timeout": pool.timeout,
        "pool_recycle": pool.recycle,
        "pool_pre_ping": pool.pre_ping,
    }
    if url.dialect == "postgresql":
        options["connect_args"] = {
            "server_settings": {
                "application_name": "ordergraph",
                "statement_timeout": str(settings.statement_timeout_ms),
            },
            "timeout": pool.timeout,
        }
    return create_async_engine(url.async_url, **options)
