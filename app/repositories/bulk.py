"""Bulk loading for seeding and benchmarks, where rows arrive by the thousand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import orders, products, users


async def is_empty(conn: AsyncConnection) -> bool:
    for table in (users, products, orders):
        if (await conn.execute(select(exists().select_from(table)))).scalar_one():
            return False
    return True


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(table), list(rows))
