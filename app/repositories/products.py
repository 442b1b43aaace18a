"""The product catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import products
from app.domain.models import Product
from app.domain.money import Money
from app.domain.products import StockMove
from app.pagination import Page
from app.repositories._upsert import insert_or_skip


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


class ProductRepository:
    """Products inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_many(self, ids: Sequence[UUID]) -> dict[UUID, Product]:
        return await get_by_ids(self._conn, ids)

    async def add(self, product: Product) -> bool:
        """Insert the product; False if its SKU is taken (a race is decided by the index)."""
        stmt = insert_or_skip(
            self._conn,
            products,
            {
                "id": product.id,
                "sku": product.sku,
                "name": product.name,
                "description": product.description,
                "price_amount": product.price.minor_units,
                "currency": product.price.currency,
                "stock": product.stock,
                "version": product.version,
                "created_at": product.created_at,
                "updated_at": product.updated_at,
            },
            conflict_columns=("sku",),
            returning=("id",),
        )
        return (await self._conn.execute(stmt)).first() is not None

    async def save(self, product: Product, expected_version: int) -> bool:
        """Write the product's details if nobody changed it since `expected_version`."""
        stmt = (
            update(products)
            .where(products.c.id == product.id, products.c.version == expected_version)
            .values(
                name=product.name,
                description=product.description,
                price_amount=product.price.minor_units,
                currency=product.price.currency,
                version=product.version,
                updated_at=product.updated_at,
            )
        )
        return (await self._conn.execute(stmt)).rowcount == 1

    async def move_stock(
        self, product_id: UUID, delta: int, now: datetime, *, ceiling: int | None = None
    ) -> StockMove | None:
        """Add `delta` (negative to take) to the stock unless that would go below zero (or above
        `ceiling`, checked in the same statement so concurrent restocks cannot overflow).

        One conditional UPDATE, so concurrent orders cannot both take the last unit: the row lock
        (PostgreSQL) or the write lock (SQLite) orders them and the second sees the first's
        stock. The version it returns is the product's stream version for the stock event.
        None: no such product, not enough stock, or the ceiling reached.
        """
        bounds = [products.c.stock + delta >= 0]
        if ceiling is not None:
            bounds.append(products.c.stock + delta <= ceiling)
        stmt = (
            update(products)
            .where(products.c.id == product_id, *bounds)
            .values(
                stock=products.c.stock + delta,
                version=products.c.version + 1,
                updated_at=now,
            )
            .returning(
                products.c.version, products.c.stock, products.c.price_amount, products.c.currency
            )
        )
        row = (await self._conn.execute(stmt)).first()
        if row is None:
            return None
        return StockMove(row.version, row.stock, Money(row.price_amount, row.currency))
