"""Shared set-up for the write-side tests: fresh databases, users and products."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from app.auth.principal import Principal, PrincipalKind
from app.db import tables
from app.db.engine import Database
from app.domain.models import Product
from app.domain.products import PriceInput
from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import SeedSize
from app.usecases.products import CreateProduct, create_product
from tests.conftest import MakeDb
from tests.graphql import TEST_ADMIN

USERS_ONLY = SeedSize(products=0, users=6, orders=0)
CUSTOMER_SCOPES = frozenset({"products:read", "orders:read", "orders:write"})
_labels = itertools.count()


@dataclass(frozen=True)
class Shop:
    db: Database
    customers: list[Principal]


async def new_shop(make_db: MakeDb, backend: str, label: str) -> Shop:
    db = await make_db(backend, f"{label}_{next(_labels)}", USERS_ONLY)
    async with db.read() as conn:
        ids = list((await conn.execute(select(tables.users.c.id).order_by("email"))).scalars())
    customers = [Principal(PrincipalKind.CUSTOMER, user_id=i, scopes=CUSTOMER_SCOPES) for i in ids]
    return Shop(db, customers)


async def add_product(
    db: Database, stock: int, price: str = "10.00", currency: str = "USD"
) -> Product:
    outcome = await create_product(
        lambda: SqlUnitOfWork(db),
        TEST_ADMIN,
        CreateProduct(
            sku=f"T-{uuid.uuid4().hex[:10]}",
            name="Test product",
            description=None,
            price=PriceInput(price, currency),
            stock=stock,
        ),
    )
    assert outcome.value is not None, outcome.problems
    return outcome.value


async def stock_of(db: Database, product_id: uuid.UUID) -> int:
    async with db.read() as conn:
        stmt = select(tables.products.c.stock).where(tables.products.c.id == product_id)
        return int((await conn.execute(stmt)).scalar_one())


async def count_rows(db: Database, table: str, **where: object) -> int:
    t = tables.metadata.tables[table]
    async with db.read() as conn:
        stmt = select(t).where(*(t.c[k] == v for k, v in where.items()))
        return len((await conn.execute(stmt)).all())
