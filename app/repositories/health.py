"""What readiness needs from the database: that it answers, and which migrations it has."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, select, text

from app.db.engine import Connection

# yoyo's bookkeeping table (its default name); not part of the application's metadata.
yoyo_migration = Table("_yoyo_migration", MetaData(), Column("migration_id", String))

# Whether the table exists, asked of each database's catalogue (one statement, any connection).
_HAS_TABLE = {
    "postgresql": text("SELECT to_regclass(CAST(:name AS text)) IS NOT NULL"),
    "sqlite": text("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = :name"),
}


async def applied_migration_ids(conn: Connection) -> set[str]:
    """The ids yoyo recorded as applied; none on a database that was never migrated."""
    found = await conn.execute(_HAS_TABLE[conn.dialect.name], {"name": yoyo_migration.name})
    if not found.scalar():
        return set()
    result = await conn.execute(select(yoyo_migration.c.migration_id))
    return {str(migration_id) for migration_id in result.scalars()}
