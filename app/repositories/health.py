"""What readiness needs from the database: that it answers, and which migrations it has."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

# yoyo's bookkeeping table (its default name); not part of the application's metadata.
yoyo_migration = Table("_yoyo_migration", MetaData(), Column("migration_id", String))


def _has_yoyo_table(conn: Connection) -> bool:
    return inspect(conn).has_table(yoyo_migration.name)


async def applied_migration_ids(conn: AsyncConnection) -> set[str]:
    """The ids yoyo recorded as applied; none on a database that was never migrated."""
    if not await conn.run_sync(_has_yoyo_table):
        return set()
    result = await conn.execute(select(yoyo_migration.c.migration_id))
    return {str(migration_id) for migration_id in result.scalars()}
