"""Deleting rows that have outlived their use, a bounded batch per statement.

Each function deletes at most `limit` rows, chosen by primary key in a subquery, so one call
holds its locks briefly however much has piled up; the caller repeats until less than a batch
comes back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, and_, delete, exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from app.db.tables import (
    access_tokens,
    authorization_codes,
    events,
    handler_runs,
    idempotency_keys,
    refresh_tokens,
)


async def _delete_batch(
    conn: AsyncConnection, table: Table, where: ColumnElement[bool], limit: int
) -> int:
    key = list(table.primary_key.columns)
    chosen = select(*key).where(where).limit(limit)
    target = key[0].in_(chosen) if len(key) == 1 else tuple_(*key).in_(chosen)
    result = await conn.execute(delete(table).where(target))
    return int(result.rowcount or 0)


async def delete_expired_access_tokens(
    conn: AsyncConnection, expired_before: datetime, limit: int
) -> int:
    """Access-token rows (their revocation record) once the token itself can no longer be used."""
    return await _delete_batch(
        conn, access_tokens, access_tokens.c.expires_at < expired_before, limit
    )


async def delete_expired_authorization_codes(
    conn: AsyncConnection, expired_before: datetime, limit: int
) -> int:
    """Codes, used or not, past their expiry: a replayed code is refused as unknown all the same."""
    table = authorization_codes
    return await _delete_batch(conn, table, table.c.expires_at < expired_before, limit)


async def delete_expired_refresh_tokens(
    conn: AsyncConnection, expired_before: datetime, limit: int
) -> int:
    """Refresh tokens past their expiry. Used and revoked ones stay until then: reuse detection
    (which revokes the family) needs them as long as they could be presented."""
    table = refresh_tokens
    return await _delete_batch(conn, table, table.c.expires_at < expired_before, limit)


async def delete_old_idempotency_keys(
    conn: AsyncConnection, created_before: datetime, limit: int
) -> int:
    table = idempotency_keys
    return await _delete_batch(conn, table, table.c.created_at < created_before, limit)


async def delete_old_handled_events(
    conn: AsyncConnection, occurred_before: datetime, limit: int
) -> int:
    """Events published and handled before the cutoff, with their handler runs; each stream's
    latest event stays, since the next event's version follows it."""
    later = events.alias("later")
    old = and_(
        events.c.published_at.is_not(None),
        events.c.handled_at.is_not(None),
        events.c.occurred_at < occurred_before,
        exists().where(
            and_(later.c.stream_id == events.c.stream_id, later.c.version > events.c.version)
        ),
    )
    chosen = select(events.c.id).where(old).order_by(events.c.sequence).limit(limit)
    ids = list((await conn.execute(chosen)).scalars())
    if not ids:
        return 0
    await conn.execute(delete(handler_runs).where(handler_runs.c.event_id.in_(ids)))
    result = await conn.execute(delete(events).where(events.c.id.in_(ids)))
    return int(result.rowcount or 0)
