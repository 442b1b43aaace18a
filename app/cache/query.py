"""The query-result cache: a repository read's result, keyed by a hash of its statement and
parameters, stored in the cache manager under the tags of what it read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from sqlalchemy.sql import ClauseElement

from app.cache.manager import CacheManager, Codec
from app.db.engine import Connection, Database

T = TypeVar("T")


def statement_key(db: Database, stmt: ClauseElement) -> str:
    """The SQL text for this database's dialect and the bound values, hashed."""
    compiled = stmt.compile(dialect=db.engine.dialect)
    params = json.dumps(compiled.params, default=str, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{db.dialect}\n{compiled}\n{params}".encode()).hexdigest()
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
    ) -> T:
        """`run(conn)` (which executes `stmt`) on a read connection, unless a cached result of
        `stmt` is fresh; a hit borrows no connection at all."""

        async def load() -> T:
            async with db.read() as conn:
                return await run(conn)

        if not self.manager.enabled:
            return await load()
        return await self.manager.get_or_load(statement_key(db, stmt), load, tags=tags, codec=codec)
