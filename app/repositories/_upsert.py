"""INSERT … ON CONFLICT DO NOTHING in each database's spelling.

Both databases can skip a row that would break a unique constraint and say so through
RETURNING; that reports a lost race as "no row" rather than as an error that would abort a
PostgreSQL transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert


def insert_or_skip(
    conn: AsyncConnection,
    table: Table,
    values: dict[str, Any],
    conflict_columns: Sequence[str],
    returning: Sequence[str],
) -> ReturningInsert[Any]:
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(values)
        pg = pg.on_conflict_do_nothing(index_elements=list(conflict_columns))
        return pg.returning(*(table.c[name] for name in returning))
    lite = sqlite.insert(table).values(values)
    lite = lite.on_conflict_do_nothing(index_elements=list(conflict_columns))
    return lite.returning(*(table.c[name] for name in returning))
