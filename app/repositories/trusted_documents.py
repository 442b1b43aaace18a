"""Trusted documents (PERSISTED_QUERIES=trusted): registered once, looked up per request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.tables import trusted_documents
from app.domain.documents import TrustedDocument
from app.repositories._upsert import insert_or_skip


async def find(conn: Connection, key: str) -> str | None:
    """The text registered under this id, or whose SHA-256 this is."""
    row = (
        await conn.execute(
            select(trusted_documents.c.body)
            .where(or_(trusted_documents.c.id == key, trusted_documents.c.sha256 == key))
            .limit(1)
        )
    ).first()
    return None if row is None else str(row[0])


class TrustedDocumentRepository:
    """Registering trusted documents inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, documents: Sequence[TrustedDocument], now: datetime) -> int:
        """Register the documents not registered yet; how many were new."""
        added = 0
        for document in documents:
            inserted = await self._conn.execute(
                insert_or_skip(
                    self._conn,
                    trusted_documents,
                    {
                        "id": document.id,
                        "sha256": document.sha256,
                        "body": document.body,
                        "name": document.name,
                        "registered_at": now,
                    },
                    ["id"],
                    ["id"],
                )
            )
            added += inserted.first() is not None
        return added
