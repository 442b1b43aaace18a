"""Loaders answer in key order, with None for missing keys, in one statement per batch."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from app.db.engine import Database, track_statements
from app.repositories import users
from loaders import Loaders
from loaders.orders import OrdersByUserKey


async def test_results_follow_key_order_with_none_for_missing(demo_db: Database) -> None:
    async with demo_db.read() as conn:
        page = await users.page(conn, 5, None)
    ids = [u.id for u in page.items]
    missing = uuid4()
    keys = [ids[3], missing, ids[0], ids[3]]
    loaders = Loaders.create(demo_db)

    with track_statements() as stats:
        found = await asyncio.gather(*(loaders.user_by_id.load(k) for k in keys))

    assert [u.id if u else None for u in found] == [ids[3], None, ids[0], ids[3]]
    assert stats.statements == 1


async def test_each_relation_is_one_statement_for_many_parents(demo_db: Database) -> None:
    async with demo_db.read() as conn:
        page = await users.page(conn, 50, None)
    loaders = Loaders.create(demo_db)
    user_ids = [u.id for u in page.items]

    with track_statements() as stats:
        profiles = await loaders.profile_by_user_id.load_many(user_ids)
    assert stats.statements == 1
    assert [p.user_id for p in profiles if p] == user_ids

    with track_statements() as stats:
        pages = await loaders.orders_by_user_id.load_many(
            [OrdersByUserKey(u, 2, None) for u in user_ids]
        )
    assert stats.statements == 1
    order_ids = [o.id for p in pages for o in p.items]
    assert order_ids

    with track_statements() as stats:
        items = await loaders.order_items_by_order_id.load_many(order_ids)
    assert stats.statements == 1
    assert all(lines for lines in items), "every order has items"
    assert all(
        line.order_id == oid for oid, lines in zip(order_ids, items, strict=True) for line in lines
    )


async def test_a_loader_cache_lives_only_as_long_as_its_loaders(demo_db: Database) -> None:
    async with demo_db.read() as conn:
        page = await users.page(conn, 1, None)
    key = page.items[0].id
    loaders = Loaders.create(demo_db)
    await loaders.user_by_id.load(key)

    with track_statements() as stats:
        await loaders.user_by_id.load(key)
        await Loaders.create(demo_db).user_by_id.load(key)

    assert stats.statements == 1, "cached within one set of loaders, fetched again in a new one"
