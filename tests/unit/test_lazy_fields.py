"""Lazy fields: computed on first read, once, and never a class-level default."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import UUID

from app.domain import models
from app.domain.money import Money as MoneyValue
from resolvers.global_id import to_global_id
from resolvers.money import Money
from resolvers.order import Order
from resolvers.order_item import OrderItem

ORDER_ID = UUID("00000000-0000-4000-8000-000000000001")
USER_ID = UUID("00000000-0000-4000-8000-000000000002")
ITEM_ID = UUID("00000000-0000-4000-8000-000000000003")
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _order() -> Order:
    return Order.of(
        models.Order(
            id=ORDER_ID,
            user_id=USER_ID,
            status=models.OrderStatus.PLACED,
            total=MoneyValue(1999, "EUR"),
            created_at=NOW,
            updated_at=NOW,
        )
    )


def test_fields_are_computed_on_first_read_only() -> None:
    order = _order()
    assert "id" not in vars(order)
    assert "total" not in vars(order)
    assert order.id == to_global_id("Order", ORDER_ID)
    assert "id" in vars(order)
    assert "total" not in vars(order)
    total = order.total
    assert isinstance(total, Money)
    assert total.amount == "19.99"
    assert total.currency == "EUR"
    assert order.total is total  # once: the stored value is read again


def test_a_second_object_reads_through_the_class_descriptor_and_gets_its_own_value() -> None:
    first, second = _order(), _order()
    assert first.id == second.id
    other = OrderItem.of(
        models.OrderItem(
            id=ITEM_ID,
            order_id=ORDER_ID,
            product_id=USER_ID,
            quantity=3,
            unit_price=MoneyValue(250, "JPY"),
        )
    )
    assert other.line_total.amount == "750"
    assert other.unit_price.amount == "250"
    assert other.id == to_global_id("OrderItem", ITEM_ID)
    assert vars(first)["id"] is not None
    assert "unit_price" not in vars(first)


def test_lazy_fields_have_no_class_level_default() -> None:
    _order().id  # noqa: B018 - the first read puts the descriptors on the class
    assert not hasattr(Order, "id")
    assert not hasattr(Order, "total")
    fields = {f.name: f for f in dataclasses.fields(Order)}
    assert fields["id"].default is dataclasses.MISSING
    assert fields["total"].default is dataclasses.MISSING
