"""Orders and their items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.sql import one_of
from app.db.tables import order_items, orders
from app.domain.models import Order, OrderItem, OrderStatus
from app.domain.money import Money
from app.domain.orders import OrderFilter
from app.pagination import Page, TimeKey

# An order's columns, in the order `_order` unpacks them (a page reads hundreds of rows: a
# tuple unpacked costs a fraction of a RowMapping and a lookup per column).
_ORDER_COLUMNS = (
    orders.c.id,
    orders.c.user_id,
    orders.c.status,
    orders.c.total_amount,
    orders.c.currency,
    orders.c.created_at,
    orders.c.updated_at,
)
_STATUSES = {status.value: status for status in OrderStatus}


def _order(row: Sequence[Any]) -> Order:
    id_, user_id, status, amount, currency, created_at, updated_at = row[:7]
    return Order(id_, user_id, _STATUSES[status], Money(amount, currency), created_at, updated_at)


def _conditions(where: OrderFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.status is not None:
        conditions.append(orders.c.status == where.status.value)
    if where.created_after is not None:
        conditions.append(orders.c.created_at > where.created_after)
    if where.user_id is not None:
        conditions.append(orders.c.user_id == where.user_id)
    return conditions


async def get_by_ids(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, Order]:
    result = await conn.execute(select(*_ORDER_COLUMNS).where(one_of(orders.c.id, ids)))
    return {order.id: order for order in map(_order, result)}


async def page(
    conn: Connection, first: int, after: TimeKey | None, where: OrderFilter
) -> Page[Order]:
    """Orders newest first, by (created_at, id) descending."""
    stmt = (
        select(*_ORDER_COLUMNS)
        .where(*_conditions(where))
        .order_by(orders.c.created_at.desc(), orders.c.id.desc())
        .limit(first + 1)
    )
    if after is not None:
        stmt = stmt.where(tuple_(orders.c.created_at, orders.c.id) < after)
    rows = [_order(row) for row in await conn.execute(stmt)]
    return Page(rows[:first], has_next=len(rows) > first, has_previous=after is not None)


async def count(conn: Connection, where: OrderFilter) -> int:
    stmt = select(func.count()).select_from(orders).where(*_conditions(where))
    return int((await conn.execute(stmt)).scalar_one())


def _pages_by_user_ids(after: bool) -> Select[Any]:
    """Each listed user's page of orders (newest first), numbered, with the user's total.

    Built once per variant (with or without a cursor) with named parameters: building it per
    call (a subquery's column collection, the cache key) cost about as much as running it.
    """
    newest_first = (orders.c.created_at.desc(), orders.c.id.desc())
    by_user = orders.c.user_id
    if not after:
        skipped: ColumnElement[int] = literal(0, Integer)
    else:
        cursor = tuple_(
            bindparam("after_at", type_=orders.c.created_at.type),
            bindparam("after_id", type_=orders.c.id.type),
        )
        at_or_before_cursor = tuple_(orders.c.created_at, orders.c.id) >= cursor
        skipped = func.sum(case((at_or_before_cursor, 1), else_=0)).over(partition_by=by_user)
    numbered = (
        select(
            *_ORDER_COLUMNS,
            func.row_number().over(partition_by=by_user, order_by=newest_first).label("rn"),
            func.count().over(partition_by=by_user).label("total"),
            skipped.label("skipped"),
        )
        .where(one_of(by_user, bindparam("user_ids")))
        .subquery("numbered")
    )
    first = bindparam("first", type_=Integer)
    in_page = and_(numbered.c.rn > numbered.c.skipped, numbered.c.rn <= numbered.c.skipped + first)
    return (
        select(numbered)
        .where(or_(in_page, numbered.c.rn == 1))
        .order_by(numbered.c.user_id, numbered.c.rn)
    )


_PAGES_BY_USER_IDS = _pages_by_user_ids(after=False)
_PAGES_BY_USER_IDS_AFTER = _pages_by_user_ids(after=True)


async def pages_by_user_ids(
    conn: Connection, user_ids: Sequence[UUID], first: int, after: TimeKey | None
) -> dict[UUID, Page[Order]]:
    """The first `first` orders (newest first) of each user, with totals, in one statement.

    Window functions number each user's orders and count those at or before the cursor, so one
    statement serves any number of users. Each user's first row also comes back, even when it is
    outside the page, so that the total is known for every user who has orders.
    """
    parameters: dict[str, Any] = {"user_ids": list(user_ids), "first": first}
    if after is None:
        stmt = _PAGES_BY_USER_IDS
    else:
        stmt = _PAGES_BY_USER_IDS_AFTER
        parameters["after_at"], parameters["after_id"] = after
    found: dict[UUID, tuple[list[Order], int, int]] = {}
    for row in await conn.execute(stmt, parameters):
        # The order's columns (user_id second), then rn, total and skipped.
        user_id, rn, total, skipped = row[1], row[7], row[8], row[9]
        items, total, skip = found.setdefault(user_id, ([], total, int(skipped)))
        if skip < rn <= skip + first:
            items.append(_order(row))
    pages: dict[UUID, Page[Order]] = {}
    for user_id in user_ids:
        items, total, skip = found.get(user_id, ([], 0, 0))
        pages[user_id] = Page(
            items, has_next=total - skip > first, has_previous=skip > 0, total=total
        )
    return pages


async def items_by_order_ids(
    conn: Connection, order_ids: Sequence[UUID]
) -> dict[UUID, list[OrderItem]]:
    items: dict[UUID, list[OrderItem]] = {}
    # Items priced alike share their (immutable) Money: a page's items repeat its products.
    prices: dict[tuple[int, str], Money] = {}
    # A page's hundreds of items: the columns named once, in the order each row is unpacked.
    rows = await conn.execute(_ITEMS_BY_ORDER_IDS, {"order_ids": list(order_ids)})
    for id_, order_id, product_id, quantity, amount, currency in rows:
        price = prices.get((amount, currency))
        if price is None:
            price = prices[amount, currency] = Money(amount, currency)
        line = OrderItem(id_, order_id, product_id, quantity, price)
        found = items.get(order_id)
        if found is None:
            items[order_id] = [line]
        else:
            found.append(line)
    return items


_ITEMS_BY_ORDER_IDS = (
    select(
        order_items.c.id,
        order_items.c.order_id,
        order_items.c.product_id,
        order_items.c.quantity,
        order_items.c.unit_price_amount,
        orders.c.currency,
    )
    .join(orders, orders.c.id == order_items.c.order_id)
    .where(one_of(order_items.c.order_id, bindparam("order_ids")))
    .order_by(order_items.c.order_id, order_items.c.position)
)


class OrderRepository:
    """Orders inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, order_id: UUID) -> Order | None:
        return (await get_by_ids(self._conn, [order_id])).get(order_id)

    async def items(self, order_id: UUID) -> list[OrderItem]:
        return (await items_by_order_ids(self._conn, [order_id])).get(order_id, [])

    async def add(self, order: Order, items: Sequence[OrderItem]) -> None:
        await self._conn.execute(
            insert(orders).values(
                id=order.id,
                user_id=order.user_id,
                status=order.status.value,
                total_amount=order.total.minor_units,
                currency=order.total.currency,
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )
        await self._conn.execute(
            insert(order_items),
            [
                {
                    "id": item.id,
                    "order_id": item.order_id,
                    "product_id": item.product_id,
                    "position": position,
                    "quantity": item.quantity,
                    "unit_price_amount": item.unit_price.minor_units,
                }
                for position, item in enumerate(items)
            ],
        )

    async def change_status(self, order: Order, expected: OrderStatus) -> bool:
        """Write the order's new status if it still has `expected`; False if another writer won."""
        stmt = (
            update(orders)
            .where(orders.c.id == order.id, orders.c.status == expected.value)
            .values(status=order.status.value, updated_at=order.updated_at)
        )
        return (await self._conn.execute(stmt)).rowcount == 1
