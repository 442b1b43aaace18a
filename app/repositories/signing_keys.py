"""Signing keys added by `rotate-signing-key`, shared by every process through the database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.tables import signing_keys
from app.domain.auth import StoredSigningKey


async def list_keys(conn: Connection) -> list[StoredSigningKey]:
    rows = await conn.execute(select(signing_keys).order_by(signing_keys.c.activates_at))
    return [
        StoredSigningKey(
            kid=row.kid,
            private_pem=row.private_pem,
            created_at=row.created_at,
            activates_at=row.activates_at,
        )
        for row in rows
    ]


async def insert_key(conn: AsyncConnection, key: StoredSigningKey) -> None:
    await conn.execute(
        insert(signing_keys).values(
            kid=key.kid,
            private_pem=key.private_pem,
            created_at=key.created_at,
            activates_at=key.activates_at,
        )
    )


async def delete_keys(conn: AsyncConnection, kids: Sequence[str]) -> int:
    if not kids:
        return 0
    result = await conn.execute(delete(signing_keys).where(signing_keys.c.kid.in_(kids)))
    return int(result.rowcount)


class SigningKeyRepository:
    """Stored signing keys inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def all(self) -> list[StoredSigningKey]:
        return await list_keys(self._conn)

    async def add(self, key: StoredSigningKey) -> None:
        await insert_key(self._conn, key)

    async def delete(self, kids: Sequence[str]) -> int:
        return await delete_keys(self._conn, kids)
