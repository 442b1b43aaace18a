"""A user's API keys, and keys by ID (for `node`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from uuid import UUID

from app.db.engine import Database
from app.domain.auth import ApiKey
from app.repositories import api_keys as repo
from loaders.base import LevelLoader, by_keys


async def load_api_keys_by_id(db: Database, ids: Sequence[UUID]) -> list[ApiKey | None]:
    return await by_keys(db, ids, repo.get_by_ids)


async def load_api_keys_by_user_id(db: Database, ids: Sequence[UUID]) -> list[list[ApiKey]]:
    found = await by_keys(db, ids, repo.by_user_ids)
    return [keys or [] for keys in found]


class ApiKeyByIdLoader(LevelLoader[UUID, ApiKey | None]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_api_keys_by_id, db))


class ApiKeysByUserIdLoader(LevelLoader[UUID, list[ApiKey]]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_api_keys_by_user_id, db))
