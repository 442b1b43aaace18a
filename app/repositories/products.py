"""The product catalogue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cache import tags
from app.cache.manager import FunctionCodec
from app.cache.query import QueryCache
from app.db.engine import Connection, Database
from app.db.sql import one_of
from app.db.tables import products
from app.domain.models import Product
from app.domain.money import Money
from app.domain.products import StockMove
from app.pagination import Page
from app.repositories._upsert import insert_or_skip

# A product's columns, in the order `_product` unpacks them (a nested page reads hundreds).
_COLUMNS = (
    products.c.id,
    products.c.sku,
    products.c.name,
    products.c.description,
    products.c.price_amount,
    products.c.currency,
    products.c.stock,
    products.c.version,
    products.c.created_at,
    products.c.updated_at,
)


def _product(row: Sequence[Any]) -> Product:
    id_, sku, name, description, amount, currency, stock, version, created, updated = row
    return Product(
        id_, sku, name, description, Money(amount, currency), stock, version, created, updated
    )


def _page(first: int, after: str | None) -> Select[Any]:
    stmt = select(*_COLUMNS).order_by(products.c.sku).limit(first + 1)
    return stmt if after is None else stmt.where(products.c.sku > after)


_COUNT = select(func.count()).select_from(products)
_uuid_int = attrgetter("int")


# Built once, the ids bound when it runs: a product by id is the commonest read, and building
# and hashing a new Select for each cost more than the rest of its SQL path.
_BY_IDS = select(*_COLUMNS).where(one_of(products.c.id, bindparam("ids")))


async def get_by_ids(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, Product]:
    result = await conn.execute(_BY_IDS, {"ids": list(ids)})
    return {product.id: product for product in map(_product, result)}


def _to_page(rows: list[Product], first: int, after: str | None) -> Page[Product]:
    return Page(rows[:first], has_next=len(rows) > first, has_previous=after is not None)


async def page(conn: Connection, first: int, after: str | None) -> Page[Product]:
    """Products by SKU (byte order on both databases)."""
    rows = [_product(row) for row in await conn.execute(_page(first, after))]
    return _to_page(rows, first, after)


async def count(conn: Connection) -> int:
    return int((await conn.execute(_COUNT)).scalar_one())


# --- the catalogue's reads through the query cache ----------------------------------------------


def _encode_products(items: list[Product]) -> str:
    return json.dumps(
        [
            [
                str(p.id),
                p.sku,
                p.name,
                p.description,
                p.price.minor_units,
                p.price.currency,
                p.stock,
                p.version,
                p.created_at.isoformat(),
                p.updated_at.isoformat(),
            ]
            for p in items
        ],
        separators=(",", ":"),
    )


def _decode_products(text: str) -> list[Product]:
    return [
        Product(
            id=UUID(id_),
            sku=sku,
            name=name,
            description=description,
            price=Money(int(amount), currency),
            stock=int(stock),
            version=int(version),
            created_at=datetime.fromisoformat(created),
            updated_at=datetime.fromisoformat(updated),
        )
        for id_, sku, name, description, amount, currency, stock, version, created, updated in (
            json.loads(text)
        )
    ]


_PRODUCTS = FunctionCodec(_encode_products, _decode_products)
_COUNT_CODEC = FunctionCodec[int](str, int)


class CatalogueReads:
    """The catalogue's reads for queries (never inside a unit of work: writes read fresh rows),
    served from the query cache when one is given."""

    def __init__(self, db: Database, cache: QueryCache | None = None) -> None:
        self._db = db
        self._cache = cache

    async def by_ids(self, ids: Sequence[UUID]) -> dict[UUID, Product]:
        if self._cache is None:
            async with self._db.read() as conn:
                return await get_by_ids(conn, ids)
        # Sorted (by the UUIDs' integers: comparing UUIDs is a Python call each), so one set
        # of products is one cache entry; the statement is the prebuilt one, ids bound.
        parameters = {"ids": sorted(ids, key=_uuid_int)}

        async def run(conn: Connection) -> list[Product]:
            return [_product(row) for row in await conn.execute(_BY_IDS, parameters)]

        found = await self._cache.fetch(
            self._db,
            _BY_IDS,
            run,
            parameters=parameters,
            tags=(tags.product(id_) for id_ in ids),
            codec=_PRODUCTS,
        )
        return {product.id: product for product in found}

    async def page(self, first: int, after: str | None) -> Page[Product]:
        if self._cache is None:
            async with self._db.read() as conn:
                return await page(conn, first, after)
        stmt = _page(first, after)

        async def run(conn: Connection) -> list[Product]:
            return [_product(row) for row in await conn.execute(stmt)]

        rows = await self._cache.fetch(
            self._db, stmt, run, tags=[tags.PRODUCT_LIST], codec=_PRODUCTS
        )
        return _to_page(rows, first, after)

    async def count(self) -> int:
        if self._cache is None:
            async with self._db.read() as conn:
                return await count(conn)
        return await self._cache.fetch(
            self._db, _COUNT, count, tags=[tags.PRODUCT_LIST], codec=_COUNT_CODEC
        )


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

    async def save(self, product: Product, expected: Product) -> int | None:
        """Write the product's details if they are still `expected`'s; the new stream version,
        or None when another catalogue edit changed them since they were read.

        The check is on the details only: stock moves (orders, restocks) change the stock and
        the stream version, never the details, so they cannot make a rename lose a race. The
        version is taken in this statement (`version + 1`), as stock moves take theirs, so
        every event of the product's stream still gets its own.
        """
        stmt = (
            update(products)
            .where(
                products.c.id == product.id,
                products.c.name == expected.name,
                products.c.description.is_not_distinct_from(expected.description),
                products.c.price_amount == expected.price.minor_units,
                products.c.currency == expected.price.currency,
            )
            .values(
                name=product.name,
                description=product.description,
                price_amount=product.price.minor_units,
                currency=product.price.currency,
                version=products.c.version + 1,
                updated_at=product.updated_at,
            )
            .returning(products.c.version)
        )
        version: int | None = (await self._conn.execute(stmt)).scalar_one_or_none()
        return version

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
