"""The query-result cache: a repository read's result, keyed by a hash of its statement and
parameters, stored in the cache manager under the tags of what it read."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import orjson
from sqlalchemy.sql import ClauseElement

from app.cache.manager import CacheManager, Codec
from app.db.engine import Connection, Database

T = TypeVar("T")


# SQL text per statement shape (SQLAlchemy's cache key) and dialect: compiling a statement only
# to name it in the cache cost as much as the rest of a nested page's product read.
_SQL_BY_SHAPE: dict[tuple[str, Any], str] = {}
_MAX_SHAPES = 1000


def statement_key(
    db: Database, stmt: ClauseElement, parameters: Mapping[str, Any] | None = None
) -> str:
    """The SQL text for this database's dialect and the bound values (in the order the
    statement binds them, then `parameters`, the values it is executed with), hashed: the same
    in every process, so Redis shares it."""
    key = stmt._generate_cache_key()
    if key is None:  # a construct SQLAlchemy cannot cache: its compiled text names its values
        sql, values = str(stmt.compile(dialect=db.engine.dialect)), stmt.compile().params
    else:
        shape = (db.dialect, key.key)
        found = _SQL_BY_SHAPE.get(shape)
        if found is None:
            found = str(stmt.compile(dialect=db.engine.dialect))
            if len(_SQL_BY_SHAPE) < _MAX_SHAPES:
                _SQL_BY_SHAPE[shape] = found
        sql, values = found, [bound.effective_value for bound in key.bindparams]
    if parameters:
        values = [values, sorted(parameters.items())]
    params = orjson.dumps(values, default=str, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(f"{db.dialect}\n{sql}\n".encode() + params).hexdigest()
    return f"q:{digest}"


class QueryCache:
    def __init__(self, manager: CacheManager) -> None:
        self.manager = manager

    async def fetch(
        self,
        db: Database,
        stmt: ClauseElement,
        run: Callable[[Connection], Awaitable[T]],
        *,
        tags: Iterable[str],
        codec: Codec[T],
        parameters: Mapping[str, Any] | None = None,
    ) -> T:
        """`run(conn)` (which executes `stmt` with `parameters`) on a read connection, unless a
        cached result of it is fresh; a hit borrows no connection at all. `tags` is read only on
        a miss."""

        async def load() -> T:
            async with db.read() as conn:
                return await run(conn)

        if not self.manager.enabled:
            return await load()
        return await self.manager.get_or_load(
            statement_key(db, stmt, parameters), load, tags=tags, codec=codec
        )
