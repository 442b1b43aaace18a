"""Keyset pages from the repositories agree with a plain sort of all rows, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import select

from app.db.engine import Database
from app.db.tables import orders as orders_table
from app.domain.models import OrderStatus
from app.domain.orders import OrderFilter
from app.repositories import orders, products, users

OrderRow = tuple[UUID, UUID, datetime, str]


async def _all_orders(db: Database) -> list[OrderRow]:
    """Every order as (id, user_id, created_at, status), to compute expected pages in Python."""
    t = orders_table.c
    async with db.read() as conn:
        rows = await conn.execute(select(t.id, t.user_id, t.created_at, t.status))
        return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_walking_user_pages_visits_everyone_once_in_order(demo_db: Database) -> None:
    seen = []
    after = None
    async with demo_db.read() as conn:
        while True:
            page = await users.page(conn, 37, after)
            seen.extend(page.items)
            assert page.has_previous is (after is not None)
            if not page.has_next:
                break
            after = (page.items[-1].created_at, page.items[-1].id)
        total = await users.count(conn)
    assert len(seen) == total == 200
    keys = [(u.created_at, u.id) for u in seen]
    assert keys == sorted(keys)


async def test_products_page_by_sku(demo_db: Database) -> None:
    async with demo_db.read() as conn:
        first = await products.page(conn, 10, None)
        second = await products.page(conn, 10, first.items[-1].sku)
    skus = [p.sku for p in first.items + second.items]
    assert skus == sorted(skus)
    assert len(set(skus)) == 20


async def test_order_filters_and_newest_first(demo_db: Database) -> None:
    rows = await _all_orders(demo_db)
    cut = sorted(r[2] for r in rows)[len(rows) // 2]
    where = OrderFilter(status=OrderStatus.FULFILLED, created_after=cut)
    expected = sorted(
        ((r[2], r[0]) for r in rows if r[3] == "FULFILLED" and r[2] > cut), reverse=True
    )
    async with demo_db.read() as conn:
        page = await orders.page(conn, 100, None, where)
        total = await orders.count(conn, where)
    assert [(o.created_at, o.id) for o in page.items] == expected[:100]
    assert total == len(expected)
    assert all(o.status is OrderStatus.FULFILLED for o in page.items)


async def test_pages_by_user_match_each_users_own_list(demo_db: Database) -> None:
    rows = await _all_orders(demo_db)
    by_user: dict[UUID, list[tuple[datetime, UUID]]] = {}
    for order_id, user_id, created_at, _ in rows:
        by_user.setdefault(user_id, []).append((created_at, order_id))
    for keys in by_user.values():
        keys.sort(reverse=True)
    user_ids = list(by_user)[:30]
    busiest = max(user_ids, key=lambda u: len(by_user[u]))
    cursor = by_user[busiest][2]

    async with demo_db.read() as conn:
        first_pages = await orders.pages_by_user_ids(conn, user_ids, 3, None)
        after_pages = await orders.pages_by_user_ids(conn, user_ids, 3, cursor)
        empty_pages = await orders.pages_by_user_ids(conn, user_ids, 0, None)

    for user_id in user_ids:
        mine = by_user[user_id]
        page = first_pages[user_id]
        assert [(o.created_at, o.id) for o in page.items] == mine[:3]
        assert (page.total, page.has_next, page.has_previous) == (len(mine), len(mine) > 3, False)
        assert empty_pages[user_id].items == []
        assert empty_pages[user_id].total == len(mine)
    later = [k for k in by_user[busiest] if k < cursor]
    page = after_pages[busiest]
    assert [(o.created_at, o.id) for o in page.items] == later[:3]
    assert page.has_previous is True
    assert page.has_next is (len(later) > 3)
    assert page.total == len(by_user[busiest])


async def test_users_without_orders_get_an_empty_page(demo_db: Database) -> None:
    missing = uuid4()
    async with demo_db.read() as conn:
        pages = await orders.pages_by_user_ids(conn, [missing], 10, None)
    assert pages[missing].items == []
    assert pages[missing].total == 0
    assert pages[missing].has_next is False


async def test_timestamps_come_back_aware_utc(demo_db: Database) -> None:
    """UTCDateTime's promise on both databases, also where asyncpg's rows skip its processor."""
    t = orders_table.c
    async with demo_db.read() as conn:
        rows = list(await conn.execute(select(t.created_at, t.updated_at).limit(20)))
        page = await orders.page(conn, 5, None, OrderFilter())
    stamps = [stamp for row in rows for stamp in row]
    stamps += [o.created_at for o in page.items] + [o.updated_at for o in page.items]
    assert len(stamps) == 50
    assert all(type(s) is datetime and s.utcoffset() == timedelta(0) for s in stamps)
