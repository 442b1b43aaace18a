"""Products and the catalogue list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

from app.domain.models import Product
from app.pagination import Page
from app.repositories.products import CatalogueReads
from loaders.base import LevelLoader, in_key_order


@dataclass(frozen=True, slots=True)
class ProductsPageKey:
    first: int
    after: str | None


async def load_products_by_id(reads: CatalogueReads, ids: Sequence[UUID]) -> list[Product | None]:
    return in_key_order(ids, await reads.by_ids(list(dict.fromkeys(ids))))


async def load_products_pages(
    reads: CatalogueReads, keys: Sequence[ProductsPageKey]
) -> list[Page[Product]]:
    return [await reads.page(key.first, key.after) for key in keys]


async def load_products_count(reads: CatalogueReads, keys: Sequence[None]) -> list[int]:
    total = await reads.count()
    return [total for _ in keys]


class ProductByIdLoader(LevelLoader[UUID, Product | None]):
    def __init__(self, reads: CatalogueReads) -> None:
        super().__init__(partial(load_products_by_id, reads))


class ProductsPageLoader(LevelLoader[ProductsPageKey, Page[Product]]):
    def __init__(self, reads: CatalogueReads) -> None:
        super().__init__(partial(load_products_pages, reads))


class ProductsCountLoader(LevelLoader[None, int]):
    def __init__(self, reads: CatalogueReads) -> None:
        super().__init__(partial(load_products_count, reads))
