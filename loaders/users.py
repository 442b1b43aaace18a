"""Users, their profiles and the user list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

from app.db.engine import Database
from app.domain.models import Profile, User
from app.pagination import Page, TimeKey
from app.repositories import users as repo
from loaders.base import LevelLoader, by_keys


@dataclass(frozen=True, slots=True)
class UsersPageKey:
    first: int
    after: TimeKey | None


async def load_users_by_id(db: Database, ids: Sequence[UUID]) -> list[User | None]:
    return await by_keys(db, ids, repo.get_by_ids)


async def load_profiles_by_user_id(db: Database, ids: Sequence[UUID]) -> list[Profile | None]:
    return await by_keys(db, ids, repo.profiles_by_user_ids)


async def load_users_pages(db: Database, keys: Sequence[UsersPageKey]) -> list[Page[User]]:
    async with db.read() as conn:
        return [await repo.page(conn, key.first, key.after) for key in keys]


async def load_users_count(db: Database, keys: Sequence[None]) -> list[int]:
    async with db.read() as conn:
        total = await repo.count(conn)
    return [total for _ in keys]


class UserByIdLoader(LevelLoader[UUID, User | None]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_users_by_id, db))


class ProfileByUserIdLoader(LevelLoader[UUID, Profile | None]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_profiles_by_user_id, db))


class UsersPageLoader(LevelLoader[UsersPageKey, Page[User]]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_users_pages, db))


class UsersCountLoader(LevelLoader[None, int]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_users_count, db))
