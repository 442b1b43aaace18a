"""The async engine, its pool, and the per-request statement statistics.

Database trouble (the server gone, the pool exhausted, a statement past its timeout, SQLite
locked) is turned into `ServiceUnavailable` here, where connections are borrowed, so loaders,
repositories and resolvers never see driver exceptions and clients never see their text.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from app.config import Settings
from app.db.driver import DriverPool, PoolClosed, PoolTimeout
from app.db.urls import DatabaseUrl
from app.errors import ApiError, DatabaseBusy, ServiceUnavailable
from app.observability import metrics

log = logging.getLogger("app.db")

# A pooled connection's record says it was counted in og_db_pool_connections_in_use.
_COUNTED = "og_counted_in_use"


@dataclass
class StatementStats:
    """Statements, their round trips and time for one unit of work, such as a GraphQL request.

    A round trip is one wait for the server: a statement, preparing one, BEGIN, COMMIT or
    ROLLBACK. SQLite is in process; its statements count as one round trip each.
    """

    statements: int = 0
    round_trips: int = 0
    seconds: float = 0.0


class Connection(Protocol):
    """What repositories need from a connection: SQLAlchemy's AsyncConnection, or for reads on
    PostgreSQL the driver's own (`DriverConnection`)."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[*tuple[Any, ...]]: ...


_current_stats: ContextVar[StatementStats | None] = ContextVar("statement_stats", default=None)


class track_statements:
    """Count the statements issued from this context (and tasks started from it).

    A class rather than a generator: every GraphQL operation enters it."""

    __slots__ = ("_stats", "_token")

    def __init__(self) -> None:
        self._stats = StatementStats()

    def __enter__(self) -> StatementStats:
        self._token = _current_stats.set(self._stats)
        return self._stats

    def __exit__(self, *exc_info: object) -> None:
        _current_stats.reset(self._token)


class Database:
    """One engine per process; connections are borrowed per operation and returned at once."""

    def __init__(self, url: DatabaseUrl, settings: Settings) -> None:
        self.url = url
        self.dialect = url.dialect
        self._slow_seconds = settings.slow_statement_seconds
        self._busy_timeout_ms = settings.statement_timeout_ms
        self.engine = _create_engine(url, settings)
        self._install_listeners(self.engine)
        # Reads need no transaction. On PostgreSQL they skip SQLAlchemy's connection altogether
        # (app.db.driver): one round trip per statement, no BEGIN/ROLLBACK, no pre-ping. On SQLite
        # the driver never begins transactions (see _install_listeners), so a read connection is
        # simply one whose `begin` emits nothing.
        self._read_engine = self.engine.execution_options(**{_NO_BEGIN: True})
        self._driver = (
            DriverPool(
                url.url.render_as_string(hide_password=False),
                self.engine.dialect,
                settings.pool,
                _connect_args(settings),
                self._record,
            )
            if self.dialect == "postgresql"
            else None
        )

    def read(self) -> AbstractAsyncContextManager[Connection]:
        """A pooled connection for reads, outside any transaction; database trouble raises
        ServiceUnavailable. Every statement sees the data committed when it starts."""
        if self._driver is None:
            return _borrow(self._read_engine)
        return _DriverRead(self._driver)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction: committed if the block ends, else rolled back.

        On SQLite the transaction starts with BEGIN IMMEDIATE (emitted from the `begin` event),
        which takes the write lock up front: concurrent writers queue on the busy timeout instead
        of failing half-way with "database is locked" when a deferred transaction tries to
        upgrade its read lock. A lock not granted in time, here or on PostgreSQL, becomes
        `DatabaseBusy`, which use cases retry.

        Leaving the block by cancellation (a client gone, a timeout) still ends the transaction
        and returns the connection: SQLAlchemy's transaction rolls back (on SQLite, which frees
        the write lock) or invalidates a connection a cancelled statement left unusable (on
        PostgreSQL, whose server then rolls back).
        """
        async with _borrow(self.engine) as connection, connection.begin():
            yield connection

    async def dispose(self) -> None:
        if self._driver is not None:
            await self._driver.close()
        await self.engine.dispose()

    def _record(self, statement: str, elapsed: float, round_trips: int) -> None:
        stats = _current_stats.get()
        if stats is not None:
            stats.statements += 1
            stats.round_trips += round_trips
            stats.seconds += elapsed
        if elapsed >= self._slow_seconds:
            log.warning("slow statement (%.3f s): %s", elapsed, " ".join(statement.split()))

    def _install_listeners(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["og_started"] = time.perf_counter()

        @event.listens_for(sync_engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            elapsed = time.perf_counter() - conn.info.pop("og_started", time.perf_counter())
            self._record(statement, elapsed, 1)

        if self.dialect == "postgresql":
            # Transactions (writes) go through SQLAlchemy; their control statements are round
            # trips too. (On SQLite, BEGIN IMMEDIATE is a statement, counted above.)

            def _control(conn: Any) -> None:
                stats = _current_stats.get()
                if stats is not None:
                    stats.round_trips += 1

            for name in ("begin", "commit", "rollback"):
                event.listen(sync_engine, name, _control)

        # Pool gauges for /metrics: connections checked out, and borrowers waiting (_borrow).
        # SQLAlchemy also checks in a connection whose checkout failed after the pool took it
        # (a pre-ping cancelled or failing): only what was counted out is counted back in, or
        # the gauge would drift below the truth.
        @event.listens_for(sync_engine.pool, "checkout")
        def _checked_out(dbapi_connection: Any, record: Any, *args: Any) -> None:
            record.info[_COUNTED] = True
            metrics.POOL_IN_USE.inc()

        @event.listens_for(sync_engine.pool, "checkin")
        def _checked_in(dbapi_connection: Any, record: Any) -> None:
            if record is not None and record.info.pop(_COUNTED, False):
                metrics.POOL_IN_USE.dec()

        if self.dialect == "sqlite":
            # SQLAlchemy's documented recipe for SQLite transactions: the driver's own
            # transaction handling is off (it would BEGIN lazily, before the first write only),
            # and every transaction SQLAlchemy begins is emitted here. `conn.begin()`, commit and
            # rollback then manage it like on any other database, cancellation included.

            @event.listens_for(sync_engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                # SQLite's counterpart of statement_timeout: how long to wait for a lock.
                cursor.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            @event.listens_for(sync_engine, "handle_error")
            def _sqlite_cancelled(context: Any) -> None:
                # SQLAlchemy takes a cancelled statement for a broken connection and closes it.
                # aiosqlite's thread finishes the statement anyway, so the connection is fine;
                # but closing it with the statement still open leaves SQLite a zombie connection
                # that keeps the write lock until the garbage collector finalises the statement.
                # Kept, the transaction is rolled back as for any error, which frees the lock.
                if isinstance(context.original_exception, asyncio.CancelledError):
                    context.is_disconnect = False

            @event.listens_for(sync_engine, "begin")
            def _sqlite_begin(conn: Any) -> None:
                if not conn.get_execution_options().get(_NO_BEGIN):
                    # Every transaction here writes: take the write lock up front.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")


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
        options["connect_args"] = _connect_args(settings)
    return create_async_engine(url.async_url, **options)


def _connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's connection arguments, for SQLAlchemy's pool and the driver's alike."""
    statement_seconds = settings.statement_timeout_ms / 1000
    return {
        "server_settings": {
            "application_name": "ordergraph",
            "statement_timeout": str(settings.statement_timeout_ms),
        },
        # Bounds connecting (TCP, TLS, authentication) to a server that does not answer.
        "timeout": settings.pool.timeout,
        # The server cancels a slow statement itself; this client-side bound, a little
        # later, covers a server or network that has stopped answering altogether.
        "command_timeout": statement_seconds + _COMMAND_TIMEOUT_MARGIN
        if statement_seconds > 0
        else None,
    }


_COMMAND_TIMEOUT_MARGIN = 2.0
# The execution option marking SQLite's read connections: their `begin` emits no BEGIN.
_NO_BEGIN = "og_sqlite_no_begin"

# What clients are told. They say what happened and what to do, and nothing about the database.
UNAVAILABLE_MESSAGE = "The database is unavailable. Try again shortly."
BUSY_MESSAGE = "The service is too busy to answer now. Try again shortly."
TOO_SLOW_MESSAGE = "The database took too long to answer. Try again shortly."

# PostgreSQL SQLSTATE classes that mean the server, not the statement, is the problem:
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdowns,
# pg_terminate_backend, and 57014 query_canceled, which statement_timeout raises).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
_QUERY_CANCELED = "57014"
_SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# Lock waits that ran out and deadlocks: the transaction lost a race and may be run again.
_PG_LOCK_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


def _is_lock_timeout(error: BaseException) -> bool:
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    original = error.orig
    if isinstance(original, sqlite3.Error):
        return original.sqlite_errorcode & 0xFF in _SQLITE_BUSY_CODES
    return getattr(original, "sqlstate", None) in _PG_LOCK_SQLSTATES


def unavailable_message(error: BaseException, *, connecting: bool) -> str | None:
    """The client-facing message when `error` is database trouble rather than a bug, else None.

    While connecting, every driver error counts: whatever stops the server from accepting us
    (down, refusing connections, out of slots, the database dropped) leaves the service unable
    to answer. Once connected, only errors that name the server or a timeout count; a failing
    statement is a bug and stays an internal error.
    """
    if isinstance(error, sa_exc.TimeoutError | PoolTimeout):  # no pooled connection was free
        return BUSY_MESSAGE
    if isinstance(error, PoolClosed):  # the process is stopping
        return UNAVAILABLE_MESSAGE
    if isinstance(error, TimeoutError):  # connect timeout or asyncpg's command_timeout
        return TOO_SLOW_MESSAGE
    if isinstance(error, OSError):  # refused, reset, unreachable: raised raw by asyncpg
        return UNAVAILABLE_MESSAGE
    if connecting and isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
        return UNAVAILABLE_MESSAGE  # the driver's pool, refused by the server
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    original = error.orig
    if _is_lock_timeout(error):
        return BUSY_MESSAGE
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate == _QUERY_CANCELED:
        return TOO_SLOW_MESSAGE
    if connecting or error.connection_invalidated:
        return UNAVAILABLE_MESSAGE
    if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return UNAVAILABLE_MESSAGE
    return None


def _translated(error: BaseException, *, connecting: bool) -> ApiError | None:
    """What database trouble becomes for clients (logged here), or None: not trouble, a bug."""
    if isinstance(error, ApiError) or not isinstance(error, Exception):
        return None
    message = unavailable_message(error, connecting=connecting)
    if message is None:
        return None
    # The log gets the driver's account (without statement parameters, which may hold
    # personal data); the client gets only the message.
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    log.warning(
        "database trouble while %s: %s: %s",
        "connecting" if connecting else "running a statement",
        type(cause).__name__,
        cause,
    )
    if _is_lock_timeout(error):
        return DatabaseBusy(message)
    return ServiceUnavailable(message)


@contextmanager
def _database_trouble(*, connecting: bool) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        translated = _translated(error, connecting=connecting)
        if translated is None:
            raise
        raise translated from error


class _DriverRead:
    """`Database.read()` on PostgreSQL: a connection of the driver's pool, returned on exit,
    with trouble translated as in `_database_trouble` (a class rather than generators: every
    batch of every query borrows one)."""

    __slots__ = ("_connection", "_driver")

    def __init__(self, driver: DriverPool) -> None:
        self._driver = driver

    async def __aenter__(self) -> Connection:
        try:
            self._connection = await self._driver.acquire()
        except Exception as error:
            translated = _translated(error, connecting=True)
            if translated is None:
                raise
            raise translated from error
        return self._connection

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self._driver.release(self._connection)
        if error is not None:
            translated = _translated(error, connecting=False)
            if translated is not None:
                raise translated from error


@asynccontextmanager
async def _borrow(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection, returned on exit, with the connect phase told apart from the rest."""
    connection = engine.connect()
    metrics.POOL_WAITING.inc()
    try:
        with _database_trouble(connecting=True):
            await connection.start()
    finally:
        metrics.POOL_WAITING.dec()
    with _database_trouble(connecting=False):
        try:
            yield connection
        finally:
            await connection.close()
