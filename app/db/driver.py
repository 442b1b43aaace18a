"""Read statements straight to asyncpg: SQLAlchemy Core writes them, the driver runs them.

A read through SQLAlchemy's AsyncConnection pays, per statement, for the greenlet bridge, an
execution context, the pool's checkout events and a pre-ping (on PostgreSQL a `BEGIN`, the ping
and a `ROLLBACK` before autocommit is even set). Here a statement is compiled once per shape (its
SQLAlchemy cache key) for the PostgreSQL dialect, and each execution binds the values, sends one
prepared statement on a pooled asyncpg connection (one round trip; preparing it, once per
connection and shape, is one more), and wraps the records in a SQLAlchemy `Result` with the
columns' result processors applied, so repositories read rows as they would from SQLAlchemy.

Driver errors leave as SQLAlchemy's `DBAPIError` (the original in `.orig`), so the engine's one
translation of database trouble applies unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from app.config import PoolSettings
from app.observability import metrics

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Shape:
    """One statement shape compiled for the dialect: what every execution of it shares."""

    compiled: SQLCompiler
    sql: str
    positions: tuple[str, ...]
    expanding: bool  # `IN` lists, whose SQL depends on how many values they hold
    metadata: SimpleResultMetaData | None  # None: known only from the records


class ConnectTimeout(TimeoutError):
    """Opening a new connection took longer than DB_POOL_TIMEOUT (not waiting for a free one)."""


class PoolTimeout(Exception):
    """No pooled connection became free within DB_POOL_TIMEOUT."""


class PoolClosed(Exception):
    """The pool was closed (the process is stopping): no connection is lent any more."""


class DriverPool:
    """A pool of asyncpg connections with the engine's settings, and the compiled statement
    shapes.

    The pool is this module's own rather than asyncpg's: a borrow that finds an idle connection
    costs no await, no timer and no task (asyncpg's runs `wait_for`, a holder proxy and an
    inactivity timer on the way out, and a shielded task, a reset timer and a new inactivity
    timer on the way back), which was a tenth of a point query's CPU. Idle connections are kept
    last-in first-out, at most DB_POOL_SIZE of them (a connection returned beyond that, opened
    for a burst, is closed); at most DB_POOL_SIZE + DB_POOL_MAX_OVERFLOW are open; borrowers
    beyond that wait, first come first served, up to DB_POOL_TIMEOUT; one timer closes
    connections idle longer than DB_POOL_RECYCLE.
    """

    def __init__(
        self,
        dsn: str,
        dialect: Dialect,
        pool: PoolSettings,
        connect_args: Mapping[str, Any],
        on_statement: Callable[[str, float, int], None],
    ) -> None:
        self.dialect = dialect
        self._dsn = dsn
        self._timeout = pool.timeout
        self._keep_idle = pool.size
        self._max_open = pool.size + pool.max_overflow
        self._recycle = float(pool.recycle)
        self._connect_args = {**connect_args, **_STATEMENT_CACHE}
        self._on_statement = on_statement
        self._shapes: dict[Any, _Shape] = {}
        # Idle connections, most recently returned last, with when each was returned.
        self._idle: list[tuple[_Connection, float]] = []
        # Open connections (idle, lent or being opened): the slots DB_POOL_SIZE +
        # DB_POOL_MAX_OVERFLOW bound.
        self._open = 0
        # Borrowers waiting for a connection (or, given None, for a slot to open one in).
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._reaper: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._all_returned: asyncio.Event | None = None

    async def _connect(self) -> _Connection:
        try:
            connection: _Connection = await asyncpg.connect(
                self._dsn, connection_class=_Connection, **self._connect_args
            )
        except TimeoutError as error:
            raise ConnectTimeout(str(error)) from error
        try:
            connection.og_prepared = set()
            # JSON in and out exactly as through SQLAlchemy: its dialect's own codec set-up (the
            # hooks take its connection adapter; they read only `_connection`).
            adapter = _CodecTarget(connection)
            await self.dialect.setup_asyncpg_json_codec(adapter)  # type: ignore[attr-defined]
            await self.dialect.setup_asyncpg_jsonb_codec(adapter)  # type: ignore[attr-defined]
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def acquire(self) -> DriverConnection:
        """A pooled connection; raises PoolTimeout, ConnectTimeout or the driver's error."""
        idle = self._idle
        while idle:
            raw, _ = idle.pop()
            if not raw.is_closed():
                metrics.POOL_IN_USE.inc()
                return DriverConnection(self, raw)
            self._open -= 1  # the server closed it while it was idle
        if self._closed:
            raise PoolClosed("the database pool is closed")
        # The same /metrics pool gauges as SQLAlchemy's pool (writes) feeds in app.db.engine.
        metrics.POOL_WAITING.inc()
        try:
            raw = await self._open_or_wait()
        finally:
            metrics.POOL_WAITING.dec()
        metrics.POOL_IN_USE.inc()
        return DriverConnection(self, raw)

    async def _open_or_wait(self) -> _Connection:
        if self._open < self._max_open:
            return await self._open_one()
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                given = await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection (or a slot) just as the wait ended: pass it on.
                self._give_back(waiter.result())
            else:
                waiter.cancel()
            if isinstance(error, TimeoutError):
                raise PoolTimeout(f"no free connection within {self._timeout:g} s") from None
            raise
        if given is None:  # a slot, freed by a connection that closed: open a new one in it
            return await self._open_one(counted=True)
        return given

    async def _open_one(self, *, counted: bool = False) -> _Connection:
        if not counted:
            self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._give_back(None)
            raise

    def release(self, connection: DriverConnection) -> None:
        """Return a borrowed connection: to a waiting borrower, to the idle ones, or closed."""
        metrics.POOL_IN_USE.dec()
        raw = connection._raw
        self._give_back(None if raw.is_closed() else raw)

    def _give_back(self, raw: _Connection | None) -> None:
        """A connection back in the pool, or with None a slot freed (its connection closed)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(raw)
                return
        if raw is None:
            self._open -= 1
            self._check_all_returned()
        elif self._closed or len(self._idle) >= self._keep_idle:
            # Closed rather than kept, as SQLAlchemy's pool does, so a burst does not leave
            # DB_POOL_SIZE + DB_POOL_MAX_OVERFLOW connections open.
            self._close_in_background(raw)
        else:
            self._idle.append((raw, time.monotonic()))
            if self._reaper is None and self._recycle > 0:
                self._reaper = asyncio.get_running_loop().call_later(self._recycle, self._reap)

    def _reap(self) -> None:
        """Close the connections idle longer than DB_POOL_RECYCLE (the oldest are first)."""
        self._reaper = None
        idle = self._idle
        expired = time.monotonic() - self._recycle
        while idle and idle[0][1] <= expired:
            raw, _ = idle.pop(0)
            self._close_in_background(raw)
        if idle:
            delay = idle[0][1] - expired
            self._reaper = asyncio.get_running_loop().call_later(delay, self._reap)

    def _close_in_background(self, raw: _Connection) -> None:
        """Close gracefully (the server is told), without making the returner wait."""
        task = asyncio.get_running_loop().create_task(self._close_one(raw))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_one(self, raw: _Connection) -> None:
        try:
            await raw.close(timeout=self._timeout)
        except Exception:
            raw.terminate()
        finally:
            self._open -= 1
            self._check_all_returned()

    def _check_all_returned(self) -> None:
        if self._all_returned is not None and self._open == 0:
            self._all_returned.set()

    async def close(self) -> None:
        """Close every connection: idle ones now, lent ones as they come back (waited for)."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(PoolClosed("the database pool is closed"))
        self._waiters.clear()
        idle, self._idle = self._idle, []
        for raw, _ in idle:
            self._close_in_background(raw)
        if self._open:
            self._all_returned = asyncio.Event()
            await self._all_returned.wait()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def shape(self, statement: Executable) -> tuple[_Shape, Sequence[Any] | None]:
        """The statement's compiled shape, and the literal values the statement itself holds."""
        element = cast(ClauseElement, statement)
        key = element._generate_cache_key()  # memoised on the statement object
        if key is not None:
            shape = self._shapes.get(key.key)
            if shape is not None:
                return shape, key.bindparams
        # Given the cache key, the compiled form takes the literal values of any statement with
        # this shape (`construct_params(extracted_parameters=...)`), as SQLAlchemy's cache does.
        compiled = element.compile(dialect=self.dialect, cache_key=key)
        assert isinstance(compiled, SQLCompiler)
        columns = compiled._result_columns
        metadata = None
        if columns:  # else (text() without columns) the records name their columns
            metadata = SimpleResultMetaData(
                [column.keyname for column in columns],
                extra=[column.objects for column in columns],
                _processors=[
                    column.type._cached_result_processor(self.dialect, None) for column in columns
                ],
            )
        shape = _Shape(
            compiled=compiled,
            sql=compiled.string,
            positions=tuple(compiled.positiontup or ()),
            expanding=bool(compiled.literal_execute_params or compiled.post_compile_params),
            metadata=metadata,
        )
        if key is not None and len(self._shapes) < _MAX_SHAPES:
            self._shapes[key.key] = shape
            return shape, key.bindparams
        return shape, None


def _leaves_connection_in_doubt(error: Exception) -> bool:
    """A lost connection, the server's operator intervention (shutdown, terminated sessions)
    or a client-side protocol error; not a failing statement, after which the connection is
    ready for the next one (a statement_timeout included)."""
    if not isinstance(error, asyncpg.PostgresError):
        return True
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    return sqlstate[:2] in ("08", "57") and sqlstate != _QUERY_CANCELED


_QUERY_CANCELED = "57014"
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


@dataclass(frozen=True, slots=True)
class _CodecTarget:
    _connection: asyncpg.Connection


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection with the statements this code prepared on it, by SQL text."""

    __slots__ = ("og_prepared",)
    og_prepared: set[str]  # SQL texts asyncpg has prepared (and cached) on this connection


_MAX_SHAPES = 2000  # distinct statement shapes kept compiled; the code has far fewer
# asyncpg's statement cache per connection: room for every shape, no expiry, no size limit short
# of the largest IN list, so a shape is prepared once per connection and then costs one round trip.
_STATEMENT_CACHE_SIZE = 1000
_STATEMENT_CACHE = {
    "statement_cache_size": _STATEMENT_CACHE_SIZE,
    "max_cached_statement_lifetime": 0,
    "max_cacheable_statement_size": 1024 * 1024,
}


class DriverConnection:
    """A pooled asyncpg connection that runs SQLAlchemy Core statements (reads, no transaction)."""

    __slots__ = ("_pool", "_raw", "dialect")

    def __init__(self, pool: DriverPool, raw: _Connection) -> None:
        self._pool = pool
        self._raw = raw
        self.dialect = pool.dialect

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Result[*tuple[Any, ...]]:
        shape, literals = self._pool.shape(statement)
        compiled = shape.compiled
        values: Mapping[str, Any] = compiled.construct_params(
            dict(parameters) if parameters else None,
            extracted_parameters=literals,
            escape_names=False,
        )
        processors: Mapping[str, Any] = compiled._bind_processors
        sql: str = shape.sql
        positions: Sequence[str] = shape.positions
        if shape.expanding:
            expanded = compiled._process_parameters_for_postcompile(dict(values))
            sql, positions = expanded.statement, expanded.positiontup or ()
            values, processors = expanded.parameters, expanded.processors
        args = [
            processors[name](values[name]) if name in processors else values[name]
            for name in positions
        ]
        started = time.perf_counter()
        raw = self._raw
        # asyncpg prepares a statement once per connection (one more round trip) and keeps it in
        # its cache, which is sized here (see DriverPool) to keep every shape this code has.
        round_trips = 1 if sql in raw.og_prepared else 2
        try:
            records = await raw.fetch(sql, *args)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ) as error:
            broken = _leaves_connection_in_doubt(error)
            if broken:
                # Never back into the pool: its next borrower would find it mid-protocol (a
                # FATAL error arrives before the server closes the socket). The pool opens a
                # new one; SQLAlchemy's pool invalidates its connections the same way.
                raw.terminate()
            raise sa_exc.DBAPIError(
                sql, None, error, connection_invalidated=broken or raw.is_closed()
            ) from error
        except (OSError, asyncio.CancelledError):
            # A timeout (TimeoutError is an OSError) or a cancelled wait leaves the statement
            # running or its answer unread: the connection cannot serve the next borrower.
            raw.terminate()
            raise
        finally:
            self._pool._on_statement(sql, time.perf_counter() - started, round_trips)
        if round_trips == 2:
            if len(raw.og_prepared) >= _STATEMENT_CACHE_SIZE:
                raw.og_prepared.clear()  # asyncpg's cache drops the oldest; counted high, not low
            raw.og_prepared.add(sql)
        metadata = shape.metadata
        if metadata is None:
            metadata = SimpleResultMetaData(list(records[0].keys())) if records else _NO_COLUMNS
        return _Rows(metadata, iter(records))


class _Rows(IteratorResult[*tuple[Any, ...]]):
    """A SQLAlchemy Result over the driver's records; `returns_rows` as on a cursor result."""

    @property
    def returns_rows(self) -> bool:
        return bool(self._metadata.keys)


_NO_COLUMNS = SimpleResultMetaData([])
