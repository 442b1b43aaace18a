"""The catalogue's and the profile's use cases, on the in-memory unit of work."""

from __future__ import annotations

import uuid

import pytest

from app.domain.products import MAX_STOCK, PriceInput
from app.domain.profiles import ProfileChanges
from app.errors import Forbidden, NotFound
from app.usecases.products import (
    CreateProduct,
    UpdateProduct,
    create_product,
    restock_product,
    update_product,
)
from app.usecases.profiles import update_own_profile
from tests.unit.fakes import FakeDatabase
from tests.unit.usecase_support import ADMIN, add_product, add_user, customer


def _new(sku: str = "MUG-1", stock: int = 3) -> CreateProduct:
    return CreateProduct(
        sku=sku, name="Mug", description=None, price=PriceInput("4.50", "EUR"), stock=stock
    )


async def test_an_admin_creates_a_product_once_per_sku() -> None:
    db = FakeDatabase()
    made = await create_product(db, ADMIN, _new())
    assert made.value is not None
    assert db.store.products[made.value.id].stock == 3
    assert [e.type for e in db.committed[0]] == ["ProductCreated"]
    taken = await create_product(db, ADMIN, _new())
    assert [(p.code, p.field) for p in taken.problems] == [("SKU_TAKEN", ("sku",))]
    assert len(db.store.products) == 1


async def test_a_customer_may_not_touch_the_catalogue() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    product = add_product(db.store, stock=1)
    with pytest.raises(Forbidden):
        await create_product(db, customer(user), _new())
    with pytest.raises(Forbidden):
        await update_product(db, customer(user), product.id, UpdateProduct(name="x"))
    with pytest.raises(Forbidden):
        await restock_product(db, customer(user), product.id, 1)
    assert db.opened == []


async def test_updating_a_product_bumps_its_version_and_records_the_change() -> None:
    db = FakeDatabase()
    product = add_product(db.store, stock=1)
    changed = await update_product(db, ADMIN, product.id, UpdateProduct(name="Big mug"))
    assert changed.value is not None
    assert db.store.products[product.id].name == "Big mug"
    assert db.store.products[product.id].version == product.version + 1
    assert [e.type for e in db.committed[0]] == ["ProductUpdated"]
    same = await update_product(db, ADMIN, product.id, UpdateProduct(name="Big mug"))
    assert same.value == db.store.products[product.id]
    assert db.committed[1] == [], "no change, no event"
    with pytest.raises(NotFound):
        await update_product(db, ADMIN, uuid.uuid4(), UpdateProduct(name="x"))


async def test_restocking_adds_up_to_the_ceiling() -> None:
    db = FakeDatabase()
    product = add_product(db.store, stock=2)
    restocked = await restock_product(db, ADMIN, product.id, 5)
    assert restocked.value is not None
    assert restocked.value.stock == 7
    assert db.committed[0][0].payload["reason"] == "restock"
    full = add_product(db.store, stock=MAX_STOCK)
    over = await restock_product(db, ADMIN, full.id, 1)
    assert [p.code for p in over.problems] == ["BAD_USER_INPUT"]
    assert db.store.products[full.id].stock == MAX_STOCK
    bad = await restock_product(db, ADMIN, product.id, 0)
    assert [p.code for p in bad.problems] == ["BAD_USER_INPUT"]
    with pytest.raises(NotFound):
        await restock_product(db, ADMIN, uuid.uuid4(), 1)


async def test_a_user_changes_their_own_profile() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "ada@example.com")
    changed = await update_own_profile(
        db, customer(user), ProfileChanges(first_name="Ada", last_name="Lovelace")
    )
    assert changed.value is not None
    assert db.store.profiles[user.id].first_name == "Ada"
    assert db.store.profiles[user.id].last_name == "Lovelace"
    assert [e.type for e in db.committed[0]] == ["ProfileUpdated"]
    unchanged = await update_own_profile(db, customer(user), ProfileChanges(first_name="Ada"))
    assert unchanged.value == db.store.profiles[user.id]
    assert db.committed[1] == []
    bad = await update_own_profile(db, customer(user), ProfileChanges(first_name="x" * 500))
    assert [p.code for p in bad.problems] == ["BAD_USER_INPUT"]


async def test_the_profile_of_a_deleted_user_is_not_found() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "gone@example.com")
    del db.store.users[user.id]
    with pytest.raises(NotFound):
        await update_own_profile(db, customer(user), ProfileChanges(first_name="A"))
