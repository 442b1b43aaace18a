"""API keys, looked up by the SHA-256 of the presented key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.sql import one_of
from app.db.tables import api_keys, users
from app.domain.auth import ApiKey
from app.domain.models import Role


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """A key with what authenticating it needs to know about its owner."""

    key: ApiKey
    role: Role
    user_disabled: bool


def _key(row: Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"],
        user_id=m["user_id"],
        name=m["name"],
        last_four=m["last_four"],
        environment=m["environment"],
        scopes=frozenset(m["scopes"].split()),
        rate_per_minute=m["rate_per_minute"],
        use_count=int(m["use_count"]),
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


async def insert_key(conn: AsyncConnection, key: ApiKey, key_hash: str) -> None:
    await conn.execute(
        insert(api_keys).values(
            id=key.id,
            user_id=key.user_id,
            name=key.name,
            key_hash=key_hash,
            last_four=key.last_four,
            environment=key.environment,
            scopes=" ".join(sorted(key.scopes)),
            rate_per_minute=key.rate_per_minute,
            use_count=0,
            created_at=key.created_at,
        )
    )


async def find_active_by_hash(conn: Connection, key_hash: str) -> KeyOwner | None:
    """One statement: the key and its owner's role and state, if the key is not revoked."""
    stmt = (
        select(api_keys, users.c.role, users.c.disabled_at.label("user_disabled_at"))
        .join(users, users.c.id == api_keys.c.user_id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    m = row._mapping
    return KeyOwner(_key(row), Role(m["role"]), m["user_disabled_at"] is not None)


async def count_active_for_user(conn: AsyncConnection, user_id: UUID) -> int:
    """The user's unrevoked keys, with the user's row locked (PostgreSQL) until the transaction
    ends, so two key creations for one user cannot both pass a cap on this count."""
    await conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
    stmt = select(func.count()).where(
        api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None)
    )
    return int((await conn.execute(stmt)).scalar_one())


async def list_for_user(conn: Connection, user_id: UUID) -> list[ApiKey]:
    rows = await conn.execute(
        select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.created_at)
    )
    return [_key(row) for row in rows]


async def get_by_ids(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, ApiKey]:
    rows = await conn.execute(select(api_keys).where(one_of(api_keys.c.id, ids)))
    return {key.id: key for key in map(_key, rows)}


async def by_user_ids(conn: Connection, user_ids: Sequence[UUID]) -> dict[UUID, list[ApiKey]]:
    """Each user's keys, revoked ones included, oldest first."""
    rows = await conn.execute(
        select(api_keys)
        .where(one_of(api_keys.c.user_id, user_ids))
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    found: dict[UUID, list[ApiKey]] = {user_id: [] for user_id in user_ids}
    for key in map(_key, rows):
        found[key.user_id].append(key)
    return found


class ApiKeyRepository:
    """API keys inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def count_active(self, user_id: UUID) -> int:
        return await count_active_for_user(self._conn, user_id)

    async def add(self, key: ApiKey, key_hash: str) -> None:
        await insert_key(self._conn, key, key_hash)

    async def get(self, key_id: UUID) -> ApiKey | None:
        return (await get_by_ids(self._conn, [key_id])).get(key_id)

    async def list_for_user(self, user_id: UUID) -> list[ApiKey]:
        return await list_for_user(self._conn, user_id)

    async def revoke(self, key_id: UUID, now: datetime) -> bool:
        """False when the key was already revoked (or is gone)."""
        return await revoke(self._conn, key_id, now)


async def revoke(conn: AsyncConnection, key_id: UUID, now: datetime) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


async def record_usage(conn: AsyncConnection, usage: Mapping[UUID, tuple[int, datetime]]) -> None:
    """Add counts and move last-use times forward, for many keys in one executemany."""
    if not usage:
        return
    stmt = (
        update(api_keys)
        .where(api_keys.c.id == bindparam("key_id"))
        .values(
            use_count=api_keys.c.use_count + bindparam("uses"),
            last_used_at=bindparam("used_at"),
        )
    )
    await conn.execute(
        stmt,
        [
            {"key_id": key_id, "uses": uses, "used_at": used_at}
            for key_id, (uses, used_at) in usage.items()
        ],
    )
