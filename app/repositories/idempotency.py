"""Idempotency keys: which order a user's key placed, and for which lines."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import idempotency_keys
from app.domain.orders import IdempotencyRecord
from app.repositories._upsert import insert_or_skip


class IdempotencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(
        self, user_id: UUID, key: str, fingerprint: str, order_id: UUID, now: datetime
    ) -> IdempotencyRecord | None:
        """Reserve the key for `order_id`; or, if the key is already used, its first use.

        The primary key (user, key) decides races: on PostgreSQL a second request with the same
        key waits here until the first commits (then sees its record) or rolls back (then takes
        the key itself); on SQLite the write lock already lets only one through at a time.
        """
        stmt = insert_or_skip(
            self._conn,
            idempotency_keys,
            {
                "user_id": user_id,
                "idempotency_key": key,
                "fingerprint": fingerprint,
                "order_id": order_id,
                "created_at": now,
            },
            conflict_columns=("user_id", "idempotency_key"),
            returning=("order_id",),
        )
        if (await self._conn.execute(stmt)).first() is not None:
            return None
        found = (
            await self._conn.execute(
                select(idempotency_keys.c.fingerprint, idempotency_keys.c.order_id).where(
                    idempotency_keys.c.user_id == user_id,
                    idempotency_keys.c.idempotency_key == key,
                )
            )
        ).one()
        return IdempotencyRecord(found.fingerprint.strip(), found.order_id)
