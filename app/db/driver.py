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

import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
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


class _Acquiring:
    """Whether the task borrowing a connection got as far as opening one."""

    connecting = False


_acquiring: ContextVar[_Acquiring | None] = ContextVar("og_acquiring", default=None)


class ConnectTimeout(TimeoutError):
    """Opening a new connection took longer than DB_POOL_TIMEOUT (not waiting for a free one)."""


class PoolTimeout(Exception):
    """No pooled connection became free within DB_POOL_TIMEOUT."""


class DriverPool:
    """asyncpg's pool with the engine's settings, and the compiled statement shapes."""

    def __init__(
        self,
        dsn: str,
        dialect: Dialect,
        pool: PoolSettings,
        connect_args: Mapping[str, Any],
        on_statement: Callable[[str, float, int], None],
    ) -> None:
        self.dialect = dialect
        self._timeout = pool.timeout
        self._keep_idle = pool.size
        self._connect_args = dict(connect_args)
        self._on_statement = on_statement
        self._shapes: dict[Any, _Shape] = {}
        self._pool = asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=pool.size + pool.max_overflow,
            # No connection outlives DB_POOL_RECYCLE idle (asyncpg has no maximum age as such).
            max_inactive_connection_lifetime=pool.recycle,
            connect=self._connect,
            connection_class=_Connection,
            # Reads change no session state (no SET, LISTEN, advisory locks or transactions:
            # callers of Database.read() must not), so the default reset, a round trip per
            # release, is not needed; a connection an error left in doubt is terminated instead.
            reset=_no_reset,
        )
        self._started = False

    async def _connect(self, dsn: str, **kwargs: Any) -> _Connection:
        acquiring = _acquiring.get()
        if acquiring is not None:
            acquiring.connecting = True
        try:
            connection: _Connection = await asyncpg.connect(
                dsn, **{**kwargs, **self._connect_args, **_STATEMENT_CACHE}
            )
        except TimeoutError as error:
            raise ConnectTimeout(str(error)) from error
        connection.og_prepared = set()
        # JSON in and out exactly as through SQLAlchemy: its dialect's own codec set-up (the
        # hooks take its connection adapter; they read only `_connection`).
        adapter = _CodecTarget(connection)
        await self.dialect.setup_asyncpg_json_codec(adapter)  # type: ignore[attr-defined]
        await self.dialect.setup_asyncpg_jsonb_codec(adapter)  # type: ignore[attr-defined]
        return connection

    async def acquire(self) -> DriverConnection:
        """A pooled connection; raises PoolTimeout, ConnectTimeout or the driver's error."""
        if not self._started:
            await self._pool  # opens nothing (min_size=0): it only sets the pool up, once
            self._started = True
        acquiring = _Acquiring()
        token = _acquiring.set(acquiring)
        # The same /metrics pool gauges as SQLAlchemy's pool (writes) feeds in app.db.engine.
        metrics.POOL_WAITING.inc()
        try:
            raw = await self._pool.acquire(timeout=self._timeout)
        except TimeoutError:
            if acquiring.connecting:
                raise
            raise PoolTimeout(f"no free connection within {self._timeout:g} s") from None
        finally:
            metrics.POOL_WAITING.dec()
            _acquiring.reset(token)
        metrics.POOL_IN_USE.inc()
        return DriverConnection(self, raw)

    async def release(self, connection: DriverConnection) -> None:
        try:
            if self._pool.get_idle_size() >= self._keep_idle:
                # An overflow connection: closed rather than kept, as SQLAlchemy's pool does, so
                # a burst does not leave DB_POOL_SIZE + DB_POOL_MAX_OVERFLOW connections open.
                await connection._raw.close(timeout=self._timeout)
        finally:
            metrics.POOL_IN_USE.dec()
            await self._pool.release(connection._proxy)  # a closed one frees its slot

    async def close(self) -> None:
        if self._started:
            await self._pool.close()

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


async def _no_reset(connection: asyncpg.Connection) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _CodecTarget:
    _connection: asyncpg.Connection


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection with the statements this code prepared on it, by SQL text."""

    __slots__ = ("og_prepared",)
    og_prepared: set[str]  # SQL texts asyncpg has prepared (and cached) on this connection

    def og_itself(self) -> _Connection:
        """The connection behind the pool's proxy."""
        return self


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

    def __init__(self, pool: DriverPool, proxy: Any) -> None:
        self._pool = pool
        self._proxy = proxy
        self._raw: _Connection = proxy.og_itself()
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
        except OSError:
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
