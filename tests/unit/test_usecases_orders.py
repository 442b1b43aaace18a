"""Placing, cancelling and fulfilling orders, on the in-memory unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.domain.models import Order, OrderStatus, Product, User
from app.domain.orders import OrderLine
from app.domain.products import StockMove
from app.errors import ConcurrencyConflict, Forbidden, NotFound, Unauthenticated
from app.unit_of_work import Products
from app.usecases.orders import CreateOrder, cancel_order, create_order, fulfill_order
from tests.unit.fakes import FakeDatabase, fake_repositories
from tests.unit.usecase_support import ADMIN, add_product, add_user, customer


class _StaleReads:
    """Products whose reads say there is plenty: only the stock move knows better."""

    def __init__(self, products: Products) -> None:
        self._products = products

    def __getattr__(self, name: str) -> Any:
        return getattr(self._products, name)

    async def get_many(self, ids: Sequence[UUID]) -> dict[UUID, Product]:
        found = await self._products.get_many(ids)
        return {k: replace(v, stock=100) for k, v in found.items()}


class _PriceMoves(_StaleReads):
    """Every stock move finds the price changed since the read."""

    async def get_many(self, ids: Sequence[UUID]) -> dict[UUID, Product]:
        return await self._products.get_many(ids)

    async def move_stock(
        self, product_id: UUID, delta: int, now: datetime, *, ceiling: int | None = None
    ) -> StockMove | None:
        moved = await self._products.move_stock(product_id, delta, now, ceiling=ceiling)
        return None if moved is None else replace(moved, price=moved.price * 2)


async def _placed(
    db: FakeDatabase, stock: int = 5, quantity: int = 2
) -> tuple[User, Product, Order]:
    user = add_user(db.store, f"{uuid.uuid4().hex[:6]}@example.com")
    product = add_product(db.store, stock=stock)
    outcome = await create_order(db, customer(user), CreateOrder([OrderLine(product.id, quantity)]))
    assert outcome.value is not None, outcome.problems
    return user, product, outcome.value


async def test_an_order_takes_the_stock_and_records_its_events() -> None:
    db = FakeDatabase()
    _, product, order = await _placed(db, stock=5, quantity=2)
    assert db.store.products[product.id].stock == 3
    assert db.store.orders[order.id].status is OrderStatus.PLACED
    assert [e.type for e in db.committed[0]] == ["OrderCreated", "ProductStockChanged"]
    assert db.committed[0][1].payload["stock"] == 3


async def test_not_enough_stock_is_a_problem_and_writes_nothing() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    plenty, scarce = add_product(db.store, stock=50), add_product(db.store, stock=1)
    lines = [OrderLine(plenty.id, 2), OrderLine(scarce.id, 2)]
    outcome = await create_order(db, customer(user), CreateOrder(lines))
    assert [(p.code, p.field) for p in outcome.problems] == [
        ("INSUFFICIENT_STOCK", ("items", "1", "quantity"))
    ]
    assert db.store.products[plenty.id].stock == 50
    assert db.store.orders == {}
    assert db.store.events == []
    assert db.committed == []


async def test_the_stock_guard_refuses_what_the_read_said_was_there() -> None:
    """The read saw enough, but the conditional stock move decides: INSUFFICIENT_STOCK, not an
    internal error from a constraint."""
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    product = add_product(db.store, stock=1)
    db.repositories = lambda store: replace(
        fake_repositories(store), products=_StaleReads(fake_repositories(store).products)
    )
    outcome = await create_order(db, customer(user), CreateOrder([OrderLine(product.id, 2)]))
    assert [p.code for p in outcome.problems] == ["INSUFFICIENT_STOCK"]
    assert db.store.products[product.id].stock == 1


async def test_an_idempotency_key_returns_the_first_order() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    product = add_product(db.store, stock=5)
    command = CreateOrder([OrderLine(product.id, 1)], idempotency_key="k1")
    first = await create_order(db, customer(user), command)
    again = await create_order(db, customer(user), command)
    assert first.value is not None
    assert again.value == first.value
    assert db.store.products[product.id].stock == 4, "the repeat took no stock"
    other = CreateOrder([OrderLine(product.id, 2)], idempotency_key="k1")
    reused = await create_order(db, customer(user), other)
    assert [p.code for p in reused.problems] == ["IDEMPOTENCY_KEY_REUSED"]


async def test_an_overlong_idempotency_key_is_bad_input() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    product = add_product(db.store, stock=5)
    command = CreateOrder([OrderLine(product.id, 1)], idempotency_key="k" * 201)
    outcome = await create_order(db, customer(user), command)
    assert [p.code for p in outcome.problems] == ["BAD_USER_INPUT"]
    assert db.opened == []


async def test_ordering_needs_a_signed_in_user_with_orders_write() -> None:
    db = FakeDatabase()
    product = add_product(db.store, stock=5)
    with pytest.raises(Unauthenticated):
        await create_order(db, ANONYMOUS, CreateOrder([OrderLine(product.id, 1)]))
    user = add_user(db.store, "a@example.com")
    with pytest.raises(Forbidden):
        await create_order(
            db, customer(user, frozenset({"orders:read"})), CreateOrder([OrderLine(product.id, 1)])
        )
    assert db.store.products[product.id].stock == 5


async def test_a_price_change_during_the_order_is_retried_until_it_gives_up() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    product = add_product(db.store, stock=5)
    db.repositories = lambda store: replace(
        fake_repositories(store), products=_PriceMoves(fake_repositories(store).products)
    )
    with pytest.raises(ConcurrencyConflict):
        await create_order(db, customer(user), CreateOrder([OrderLine(product.id, 1)]))
    assert db.rollbacks == 5, "every attempt was rolled back"
    assert db.store.products[product.id].stock == 5


async def test_the_owner_cancels_and_the_stock_comes_back() -> None:
    db = FakeDatabase()
    user, product, order = await _placed(db, stock=5, quantity=2)
    outcome = await cancel_order(db, customer(user), order.id)
    assert outcome.value is not None
    assert outcome.value.status is OrderStatus.CANCELLED
    assert db.store.products[product.id].stock == 5
    assert [e.type for e in db.committed[-1]] == ["OrderCancelled", "ProductStockChanged"]
    again = await cancel_order(db, customer(user), order.id)
    assert [p.code for p in again.problems] == ["INVALID_TRANSITION"]


async def test_a_reader_that_neither_owns_nor_administers_the_order_may_not_cancel_it() -> None:
    """A client holding orders:read and orders:write may read every order but owns none."""
    db = FakeDatabase()
    _, product, order = await _placed(db)
    client = Principal(
        PrincipalKind.CLIENT, client_id="partner", scopes=frozenset({"orders:read", "orders:write"})
    )
    with pytest.raises(Forbidden):
        await cancel_order(db, client, order.id)
    assert db.store.orders[order.id].status is OrderStatus.PLACED
    assert db.store.products[product.id].stock == 3


async def test_another_customers_order_does_not_exist_for_cancelling() -> None:
    db = FakeDatabase()
    _, _, order = await _placed(db)
    stranger = add_user(db.store, "stranger@example.com")
    with pytest.raises(NotFound):
        await cancel_order(db, customer(stranger), order.id)
    with pytest.raises(NotFound):
        await cancel_order(db, ADMIN, uuid.uuid4())


async def test_an_admin_cancels_anyones_order() -> None:
    db = FakeDatabase()
    _, _, order = await _placed(db)
    outcome = await cancel_order(db, ADMIN, order.id)
    assert outcome.value is not None
    assert outcome.value.status is OrderStatus.CANCELLED


async def test_fulfilling_needs_the_scope_and_read_access() -> None:
    db = FakeDatabase()
    user, product, order = await _placed(db)
    with pytest.raises(Forbidden):
        await fulfill_order(db, customer(user), order.id)
    blind = Principal(PrincipalKind.CLIENT, client_id="c", scopes=frozenset({"orders:fulfill"}))
    with pytest.raises(NotFound):
        await fulfill_order(db, blind, order.id)
    fulfiller = Principal(
        PrincipalKind.CLIENT, client_id="c", scopes=frozenset({"orders:fulfill", "orders:read"})
    )
    outcome = await fulfill_order(db, fulfiller, order.id)
    assert outcome.value is not None
    assert outcome.value.status is OrderStatus.FULFILLED
    assert db.store.products[product.id].stock == 3, "fulfilling returns no stock"
    assert [e.type for e in db.committed[-1]] == ["OrderFulfilled"]
