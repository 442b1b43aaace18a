"""Walking a connection page by page visits every row exactly once, also where many rows share
the sort key (the ID breaks the tie) — which the seed, with a distinct time per row, never shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from app.db import tables
from app.db.engine import Database
from app.seed import SeedSize
from tests.conftest import MakeDb
from tests.graphql import execute

SAME_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USERS = """query($after: String) { users(first: 3, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }"""
ORDERS = """query($after: String) { orders(first: 4, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }"""


async def _walk(db: Database, query: str, field: str) -> tuple[list[str], int]:
    seen: list[str] = []
    after: str | None = None
    total = -1
    for _ in range(1000):  # a bound, in case pagination loops
        page: dict[str, Any] = (await execute(db, query, {"after": after})).ok()[field]
        total = page["totalCount"]
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return seen, total
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


async def test_users_sharing_one_creation_time_are_each_listed_once(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "ties_users", SeedSize(products=0, users=4, orders=0))
    async with db.write() as conn:
        await conn.execute(
            insert(tables.users),
            [
                {
                    "id": uuid.uuid4(),
                    "email": f"tie-{n}@example.com",
                    "password_hash": "x",
                    "role": "customer",
                    "created_at": SAME_TIME,
                    "updated_at": SAME_TIME,
                }
                for n in range(10)
            ],
        )
        # Two seeded users join the tie too, so it spans page boundaries from both sides.
        await conn.execute(update(tables.users).values(created_at=SAME_TIME))

    seen, total = await _walk(db, USERS, "users")

    assert total == 14
    assert len(seen) == 14
    assert len(set(seen)) == 14


async def test_walking_the_orders_connection_to_its_end_visits_every_order_once(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "walk_orders", SeedSize(products=3, users=4, orders=23))
    async with db.read() as conn:
        ids = list((await conn.execute(select(tables.orders.c.id))).scalars())
    async with db.write() as conn:  # ties across pages here too
        await conn.execute(
            update(tables.orders)
            .where(tables.orders.c.id.in_(ids[:10]))
            .values(created_at=SAME_TIME)
        )

    seen, total = await _walk(db, ORDERS, "orders")

    assert total == 23
    assert len(seen) == 23
    assert len(set(seen)) == 23
