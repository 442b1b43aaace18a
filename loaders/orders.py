"""Orders, their items, each user's orders and the order list."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

from app.db.engine import Database
from app.domain.models import Order, OrderItem
from app.domain.orders import OrderFilter
from app.pagination import Page, TimeKey
from app.repositories import orders as repo
from loaders.base import LevelLoader, by_keys


@dataclass(frozen=True, slots=True)
class OrdersPageKey:
    first: int
    after: TimeKey | None
    where: OrderFilter


@dataclass(frozen=True, slots=True)
class OrdersByUserKey:
    user_id: UUID
    first: int
    after: TimeKey | None


async def load_orders_by_id(db: Database, ids: Sequence[UUID]) -> list[Order | None]:
    return await by_keys(db, ids, repo.get_by_ids)


async def load_items_by_order_id(db: Database, order_ids: Sequence[UUID]) -> list[list[OrderItem]]:
    unique = list(dict.fromkeys(order_ids))
    async with db.read() as conn:
        found = await repo.items_by_order_ids(conn, unique)
    return [found.get(order_id, []) for order_id in order_ids]


async def load_orders_by_user_id(
    db: Database, keys: Sequence[OrdersByUserKey]
) -> list[Page[Order]]:
    """One statement per distinct (first, after): in a query, all users share those arguments."""
    groups: dict[tuple[int, TimeKey | None], list[UUID]] = defaultdict(list)
    for key in keys:
        groups[key.first, key.after].append(key.user_id)
    pages: dict[OrdersByUserKey, Page[Order]] = {}
    async with db.read() as conn:
        for (first, after), user_ids in groups.items():
            found = await repo.pages_by_user_ids(conn, list(dict.fromkeys(user_ids)), first, after)
            for user_id, page in found.items():
                pages[OrdersByUserKey(user_id, first, after)] = page
    return [pages[key] for key in keys]


async def load_orders_pages(db: Database, keys: Sequence[OrdersPageKey]) -> list[Page[Order]]:
    async with db.read() as conn:
        return [await repo.page(conn, key.first, key.after, key.where) for key in keys]


async def load_orders_count(db: Database, keys: Sequence[OrderFilter]) -> list[int]:
    async with db.read() as conn:
        return [await repo.count(conn, key) for key in keys]


class OrderByIdLoader(LevelLoader[UUID, Order | None]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_orders_by_id, db))


class OrderItemsByOrderIdLoader(LevelLoader[UUID, list[OrderItem]]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_items_by_order_id, db))


class OrdersByUserIdLoader(LevelLoader[OrdersByUserKey, Page[Order]]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_orders_by_user_id, db))


class OrdersPageLoader(LevelLoader[OrdersPageKey, Page[Order]]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_orders_pages, db))


class OrdersCountLoader(LevelLoader[OrderFilter, int]):
    def __init__(self, db: Database) -> None:
        super().__init__(partial(load_orders_count, db))
