"""The product catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import products
from app.domain.models import Product
from app.domain.money import Money
from app.pagination import Page


def _product(row: Row[tuple[object, ...]]) -> Product:
    m = row._mapping
    return Product(
        id=m["id"],
        sku=m["sku"],
        name=m["name"],
        description=m["description"],
        price=Money(m["price_amount"], m["currency"]),
        stock=m["stock"],
        version=m["version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


async def get_by_ids(conn: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, Product]:
    result = await conn.execute(select(products).where(products.c.id.in_(ids)))
    return {product.id: product for product in map(_product, result)}


async def page(conn: AsyncConnection, first: int, after: str | None) -> Page[Product]:
    """Products by SKU (byte order on both databases)."""
    stmt = select(products).order_by(products.c.sku).limit(first + 1)
    if after is not None:
        stmt = stmt.where(products.c.sku > after)
    rows = [_product(row) for row in await conn.execute(stmt)]
    return Page(rows[:first], has_next=len(rows) > first, has_previous=after is not None)


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(products))).scalar_one())
