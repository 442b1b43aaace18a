"""INSERT … ON CONFLICT DO NOTHING / DO UPDATE in each database's spelling.

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
from sqlalchemy.sql.dml import Insert, ReturningInsert


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


def upsert(
    conn: AsyncConnection,
    table: Table,
    key_columns: Sequence[str],
    update_columns: Sequence[str],
) -> Insert:
    """Insert each row given when executing, or overwrite `update_columns` of the row with the
    same key: one statement for a whole list of rows (executemany)."""
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(
            index_elements=list(key_columns), set_={c: pg.excluded[c] for c in update_columns}
        )
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(key_columns), set_={c: lite.excluded[c] for c in update_columns}
    )
