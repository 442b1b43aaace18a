"""Seeding fills an empty database once and never touches one with data."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db.tables import order_items, orders, products, users
from app.seed import SeedSize, seed
from tests.conftest import MakeDb

TINY = SeedSize(products=4, users=6, orders=15, max_items_per_order=3)


async def test_seeds_an_empty_database_once(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "seed_once")
    assert await seed(db, TINY) is True

    async def counts() -> list[int]:
        async with db.read() as conn:
            return [
                (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (products, users, orders, order_items)
            ]

    before = await counts()
    assert before[:3] == [4, 6, 15]
    assert before[3] >= 15
    assert await seed(db, TINY, seed=7) is False, "a rerun changes nothing"
    assert await counts() == before
