"""Products and the catalogue list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

from app.db.engine import Database
from app.domain.models import Product
from app.pagination import Page
from app.repositories import products as repo
from loaders.base import LevelLoader, by_keys


@dataclass(frozen=True, slots=True)
class ProductsPageKey:
    first: int
    after: str | None


async def load_products_by_id(db: Database, ids: Sequence[UUID]) -> list[Product | None]:
    return await by_keys(db, ids, repo.get_by_ids)


async def load_products_pages(db: Database, keys: Sequence[ProductsPageKey]) -> list[Page[Product]]:
    async with db.read() as conn:
        return [await repo.page(conn, key.first, key.after) for key in keys]


async def load_products_count(db: Database, keys: Sequence[None]) -> list[int]:
    async with db.read() as conn:
        total = await repo.count(conn)
    return [total for _ in keys]


class ProductByIdLoader(LevelLoader[UUID, Product | None]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_products_by_id, db))


class ProductsPageLoader(LevelLoader[ProductsPageKey, Page[Product]]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_products_pages, db))


class ProductsCountLoader(LevelLoader[None, int]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_products_count, db))
