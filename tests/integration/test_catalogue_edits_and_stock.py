"""Renaming a product does not conflict with orders taking its stock (issue 11).

The review saw `updateProduct` give up ("lost a race", after 5 attempts) under order load, because
every stock move bumped the version the catalogue edit checked. Here a stock move commits between
the edit's read and its write, every time: the edit must still succeed at once, and the product's
event stream keeps one version per event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from app.auth.principal import Principal, PrincipalKind
from app.auth.scopes import ALL_SCOPES
from app.db.engine import Database
from app.repositories import events as event_repo
from app.repositories.products import ProductRepository
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases.products import UpdateProduct, restock_product, update_product
from tests.conftest import MakeDb
from tests.integration.helpers import add_product, new_shop, stock_of

ADMIN = Principal(PrincipalKind.ADMIN, user_id=None, scopes=frozenset(ALL_SCOPES))


@pytest.mark.postgresql
async def test_a_rename_succeeds_while_stock_moves_commit_in_between(
    make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await new_shop(make_db, "postgresql", "rename_vs_stock")
    db = shop.db
    product = await add_product(db, stock=10)
    moves = 0
    moving = False
    original = ProductRepository.get_many

    async def read_then_someone_orders(self: ProductRepository, ids: Any) -> Any:
        nonlocal moves, moving
        found = await original(self, ids)
        if product.id in ids and moves < 10 and not moving:  # the restock reads too
            moves += 1
            moving = True
            # Another request's stock move commits after this read, before this write.
            restocked = await restock_product(SqlUnitOfWork.factory(db), ADMIN, product.id, 1)
            moving = False
            assert restocked.problems == ()
        return found

    monkeypatch.setattr(ProductRepository, "get_many", read_then_someone_orders)
    outcome = await update_product(
        SqlUnitOfWork.factory(db), ADMIN, product.id, UpdateProduct(name="Renamed lamp")
    )
    monkeypatch.undo()

    assert outcome.problems == ()
    assert outcome.value is not None
    assert outcome.value.name == "Renamed lamp"
    assert moves == 1, "no retry was needed"
    assert await stock_of(db, product.id) == 11
    versions = await _versions(db, product.id)
    assert versions == list(range(1, len(versions) + 1)), "one version per event, no gaps"
    assert len(versions) == 3  # created, restocked, renamed


async def test_two_renames_still_exclude_each_other(backend: str, make_db: MakeDb) -> None:
    """The catalogue edit keeps its optimistic check against another catalogue edit."""
    shop = await new_shop(make_db, backend, "rename_vs_rename")
    product = await add_product(shop.db, stock=1)
    async with SqlUnitOfWork(shop.db) as uow:
        stale = (await uow.products.get_many([product.id]))[product.id]
    first = await update_product(
        SqlUnitOfWork.factory(shop.db), ADMIN, product.id, UpdateProduct(name="First")
    )
    assert first.problems == ()
    async with SqlUnitOfWork(shop.db) as uow:
        renamed = stale.__class__(**{**_fields(stale), "name": "Second"})
        assert await uow.products.save(renamed, expected=stale) is None


def _fields(product: Any) -> dict[str, Any]:
    return {name: getattr(product, name) for name in product.__dataclass_fields__}


async def _versions(db: Database, product_id: UUID) -> list[int]:
    async with db.read() as conn:
        events = (await event_repo.by_stream_ids(conn, [product_id])).get(product_id, [])
    return [event.version for event in events]
