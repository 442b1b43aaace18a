"""createProduct, updateProduct, restockProduct and updateProfile, on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from app.auth.principal import ANONYMOUS
from app.db import tables
from app.domain.products import MAX_RESTOCK, MAX_STOCK
from tests.conftest import MakeDb
from tests.graphql import execute
from tests.integration.helpers import new_shop

CREATE = """mutation($input: CreateProductInput!) { createProduct(input: $input) {
  product { id sku name description price { amount currency } stock }
  errors { field code message } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateProductInput!) {
  updateProduct(id: $id, input: $input) {
  product { name description price { amount currency } } errors { field code } } }"""
RESTOCK = """mutation($id: ID!, $q: Int!) { restockProduct(id: $id, quantity: $q) {
  product { stock } errors { field code } } }"""
PROFILE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
  user { profile { firstName lastName displayName } } errors { field code } } }"""

LAMP = {
    "sku": "lamp-1",
    "name": "Lamp",
    "price": {"amount": "19.99", "currency": "usd"},
    "stock": 3,
}


async def test_products_are_created_updated_and_restocked(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "catalogue")
    created = (await execute(shop.db, CREATE, {"input": LAMP})).ok()["createProduct"]
    assert created["errors"] == []
    product = created["product"]
    assert (product["sku"], product["price"], product["description"]) == (
        "LAMP-1",
        {"amount": "19.99", "currency": "USD"},
        "",
    )
    taken = (await execute(shop.db, CREATE, {"input": LAMP})).ok()["createProduct"]
    assert taken["product"] is None
    assert [(e["code"], e["field"]) for e in taken["errors"]] == [("SKU_TAKEN", ["sku"])]

    bad = {**LAMP, "sku": "ok-2", "price": {"amount": "1.999", "currency": "USD"}, "stock": -1}
    errors = (await execute(shop.db, CREATE, {"input": bad})).ok()["createProduct"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("BAD_USER_INPUT", ["price", "amount"]),
        ("BAD_USER_INPUT", ["stock"]),
    ]

    pid = product["id"]
    updated = (
        await execute(shop.db, UPDATE, {"id": pid, "input": {"description": "Bright"}})
    ).ok()["updateProduct"]
    assert updated["product"] == {
        "name": "Lamp",
        "description": "Bright",
        "price": {"amount": "19.99", "currency": "USD"},
    }
    restocked = await asyncio.gather(
        *(execute(shop.db, RESTOCK, {"id": pid, "q": 2}) for _ in range(5))
    )
    assert all(r.ok()["restockProduct"]["errors"] == [] for r in restocked)
    final = (await execute(shop.db, RESTOCK, {"id": pid, "q": 1})).ok()["restockProduct"]
    assert final["product"]["stock"] == 3 + 10 + 1
    refused = (await execute(shop.db, RESTOCK, {"id": pid, "q": 0})).ok()["restockProduct"]
    assert refused["errors"] == [{"field": ["quantity"], "code": "BAD_USER_INPUT"}]

    async with shop.db.read() as conn:
        rows = (
            await conn.execute(
                select(tables.events.c.type, tables.events.c.version).order_by(
                    tables.events.c.sequence
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("ProductCreated", 1),
        ("ProductUpdated", 2),
        *[("ProductStockChanged", v) for v in range(3, 9)],
    ]


async def test_concurrent_product_updates_both_apply(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "catalogue_race")
    pid = (await execute(shop.db, CREATE, {"input": LAMP})).ok()["createProduct"]["product"]["id"]
    results = await asyncio.gather(
        execute(shop.db, UPDATE, {"id": pid, "input": {"name": "Desk lamp"}}),
        execute(
            shop.db, UPDATE, {"id": pid, "input": {"price": {"amount": "5", "currency": "USD"}}}
        ),
    )
    assert all(r.ok()["updateProduct"]["errors"] == [] for r in results)
    final = (await execute(shop.db, UPDATE, {"id": pid, "input": {}})).ok()["updateProduct"]
    assert final["product"]["name"] == "Desk lamp"
    assert final["product"]["price"] == {"amount": "5.00", "currency": "USD"}


async def test_catalogue_changes_are_for_admins(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "catalogue_perms")
    result = await execute(shop.db, CREATE, {"input": LAMP}, principal=shop.customers[0])
    assert result.codes == ["FORBIDDEN"]


async def test_users_update_their_own_profile(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "profile")
    me = shop.customers[0]
    result = (
        await execute(
            shop.db, PROFILE, {"input": {"firstName": " Grace ", "lastName": None}}, principal=me
        )
    ).ok()["updateProfile"]
    assert result["errors"] == []
    profile = result["user"]["profile"]
    assert (profile["firstName"], profile["lastName"]) == ("Grace", None)
    cleared = (
        await execute(shop.db, PROFILE, {"input": {"displayName": None}}, principal=me)
    ).ok()["updateProfile"]
    assert cleared["user"]["profile"]["displayName"] == "Grace"
    too_long = (
        await execute(shop.db, PROFILE, {"input": {"displayName": "x" * 201}}, principal=me)
    ).ok()["updateProfile"]
    assert too_long == {
        "user": None,
        "errors": [{"field": ["displayName"], "code": "BAD_USER_INPUT"}],
    }
    async with shop.db.read() as conn:
        versions = (
            await conn.execute(
                select(tables.events.c.version).where(
                    tables.events.c.stream_id == me.user_id,
                    tables.events.c.type == "ProfileUpdated",
                )
            )
        ).scalars()
        assert sorted(versions) == [1, 2]
    assert (await execute(shop.db, PROFILE, {"input": {}}, principal=ANONYMOUS)).codes == [
        "UNAUTHENTICATED"
    ]


async def test_restocks_stop_at_the_maximum_stock(backend: str, make_db: MakeDb) -> None:
    """Repeated restocks cannot overflow the stock column (int4 on PostgreSQL)."""
    shop = await new_shop(make_db, backend, "max_stock")
    near = {**LAMP, "sku": "full-1", "stock": MAX_STOCK - MAX_RESTOCK + 1}
    created = (await execute(shop.db, CREATE, {"input": near})).ok()["createProduct"]
    pid = created["product"]["id"]
    full = (await execute(shop.db, RESTOCK, {"id": pid, "q": MAX_RESTOCK - 1})).ok()
    assert full["restockProduct"]["product"] == {"stock": MAX_STOCK}
    for _ in range(3):  # with no ceiling these would pass 2**31 - 1 on PostgreSQL
        over = (await execute(shop.db, RESTOCK, {"id": pid, "q": MAX_RESTOCK})).ok()
        assert over["restockProduct"] == {
            "product": None,
            "errors": [{"field": ["quantity"], "code": "BAD_USER_INPUT"}],
        }
    async with shop.db.read() as conn:
        stock = (
            await conn.execute(
                select(tables.products.c.stock).where(tables.products.c.sku == "FULL-1")
            )
        ).scalar_one()
    assert stock == MAX_STOCK
