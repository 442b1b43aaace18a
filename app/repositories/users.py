"""Users and their profiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, bindparam, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.sql import one_of
from app.db.tables import profiles, users
from app.domain.models import Profile, Role, User, display_name_for
from app.pagination import Page, TimeKey
from app.repositories._upsert import insert_or_skip

# A user's and a profile's columns, in the order `_user` and `_profile` unpack them: a page
# reads dozens of rows, and a tuple unpacked costs a fraction of a RowMapping lookup per column.
_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.password_hash,
    users.c.role,
    users.c.created_at,
    users.c.updated_at,
    users.c.disabled_at,
)
_PROFILE_COLUMNS = (
    profiles.c.user_id,
    profiles.c.first_name,
    profiles.c.last_name,
    profiles.c.display_name,
    profiles.c.preferences,
)
_ROLES = {role.value: role for role in Role}


def _user(row: Sequence[Any]) -> User:
    id_, email, password_hash, role, created_at, updated_at, disabled_at = row
    role = _ROLES.get(role) or Role(role)  # Role() refuses an unknown one
    return User(id_, email, password_hash, role, created_at, updated_at, disabled_at)


def _profile(row: Sequence[Any]) -> Profile:
    user_id, first_name, last_name, display_name, preferences = row
    return Profile(user_id, first_name, last_name, display_name, dict(preferences or {}))


async def get_by_ids(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, User]:
    result = await conn.execute(select(*_USER_COLUMNS).where(one_of(users.c.id, ids)))
    return {user.id: user for user in map(_user, result)}


async def get_by_email(conn: Connection, email: str) -> User | None:
    result = await conn.execute(
        select(*_USER_COLUMNS).where(users.c.email == email.strip().lower())
    )
    row = result.first()
    return None if row is None else _user(row)


# A page of users, from the start or after a cursor: built once with named parameters (building
# a statement per call cost about a tenth of a 50-user list request).
_PAGE = (
    select(*_USER_COLUMNS)
    .order_by(users.c.created_at, users.c.id)
    .limit(bindparam("limit", type_=Integer))
)
_PAGE_AFTER = _PAGE.where(
    tuple_(users.c.created_at, users.c.id)
    > tuple_(
        bindparam("after_at", type_=users.c.created_at.type),
        bindparam("after_id", type_=users.c.id.type),
    )
)


async def page(conn: Connection, first: int, after: TimeKey | None) -> Page[User]:
    """Users by (created_at, id) ascending."""
    if after is None:
        result = await conn.execute(_PAGE, {"limit": first + 1})
    else:
        after_at, after_id = after
        result = await conn.execute(
            _PAGE_AFTER, {"limit": first + 1, "after_at": after_at, "after_id": after_id}
        )
    rows = [_user(row) for row in result]
    return Page(rows[:first], has_next=len(rows) > first, has_previous=after is not None)


async def count(conn: Connection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


_PROFILES_BY_USER_IDS = select(*_PROFILE_COLUMNS).where(
    one_of(profiles.c.user_id, bindparam("ids"))
)


async def profiles_by_user_ids(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, Profile]:
    result = await conn.execute(_PROFILES_BY_USER_IDS, {"ids": list(ids)})
    return {profile.user_id: profile for profile in map(_profile, result)}


async def insert_user(conn: AsyncConnection, user: User) -> None:
    """The user and a profile named after the email; the email's uniqueness is the caller's check
    (a race still ends in the unique constraint, which the caller reports)."""
    await conn.execute(
        insert(users).values(
            id=user.id,
            email=user.email,
            password_hash=user.password_hash,
            role=user.role.value,
            created_at=user.created_at,
            updated_at=user.updated_at,
            disabled_at=user.disabled_at,
        )
    )
    await conn.execute(
        insert(profiles).values(
            user_id=user.id,
            first_name=None,
            last_name=None,
            display_name=display_name_for(None, None, user.email),
            preferences={},
            updated_at=user.created_at,
        )
    )


async def disable(conn: AsyncConnection, user_id: UUID, now: datetime) -> bool:
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.disabled_at.is_(None))
        .values(disabled_at=now, updated_at=now)
    )
    return result.rowcount > 0


class UserRepository:
    """Users inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, user: User, profile: Profile) -> bool:
        """Insert the user and their profile; False, and nothing written, when the email is
        taken (a lost race included), without aborting the transaction."""
        stmt = insert_or_skip(
            self._conn,
            users,
            {
                "id": user.id,
                "email": user.email,
                "password_hash": user.password_hash,
                "role": user.role.value,
                "created_at": user.created_at,
                "updated_at": user.updated_at,
                "disabled_at": user.disabled_at,
            },
            conflict_columns=("email",),
            returning=("id",),
        )
        if (await self._conn.execute(stmt)).scalar_one_or_none() is None:
            return False
        await self._conn.execute(
            insert(profiles).values(
                user_id=profile.user_id,
                first_name=profile.first_name,
                last_name=profile.last_name,
                display_name=profile.display_name,
                preferences=profile.preferences,
                updated_at=user.created_at,
            )
        )
        return True

    async def get_by_email(self, email: str) -> User | None:
        return await get_by_email(self._conn, email)

    async def disable(self, user_id: UUID, now: datetime) -> bool:
        """False when the user was already disabled (or is gone)."""
        return await disable(self._conn, user_id, now)


class ProfileRepository:
    """Users' profiles inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_user(self, user_id: UUID) -> User | None:
        return (await get_by_ids(self._conn, [user_id])).get(user_id)

    async def get(self, user_id: UUID) -> Profile | None:
        return (await profiles_by_user_ids(self._conn, [user_id])).get(user_id)

    async def save(self, profile: Profile, now: datetime) -> None:
        await self._conn.execute(
            update(profiles)
            .where(profiles.c.user_id == profile.user_id)
            .values(
                first_name=profile.first_name,
                last_name=profile.last_name,
                display_name=profile.display_name,
                updated_at=now,
            )
        )
