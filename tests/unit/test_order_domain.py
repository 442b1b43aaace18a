"""Order rules without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.domain.errors import Code, DomainError
from app.domain.models import OrderStatus, Product
from app.domain.money import Money
from app.domain.orders import MAX_LINES, OrderLine, place_order, transition

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def product(price: int = 1999, currency: str = "USD", stock: int = 10) -> Product:
    return Product(
        id=uuid.uuid4(),
        sku=f"SKU-{uuid.uuid4().hex[:6].upper()}",
        name="Lamp",
        description="",
        price=Money(price, currency),
        stock=stock,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def codes(error: pytest.ExceptionInfo[DomainError]) -> list[tuple[Code, tuple[str, ...] | None]]:
    return [(p.code, p.field) for p in error.value.problems]


def test_an_order_is_priced_from_its_products_in_minor_units() -> None:
    lamp, mug = product(1999), product(250)
    user = uuid.uuid4()
    placed = place_order(
        user_id=user,
        lines=[OrderLine(lamp.id, 3), OrderLine(mug.id, 2)],
        products={lamp.id: lamp, mug.id: mug},
        now=NOW,
    )
    assert placed.order.total == Money(3 * 1999 + 2 * 250, "USD")
    assert placed.order.status is OrderStatus.PLACED
    assert [i.unit_price for i in placed.items] == [lamp.price, mug.price]
    assert {i.order_id for i in placed.items} == {placed.order.id}
    event = placed.event
    assert (event.type, event.stream_type, event.stream_id, event.version) == (
        "OrderCreated",
        "Order",
        placed.order.id,
        1,
    )
    assert event.payload["total"] == {"amount": "64.97", "currency": "USD"}
    assert event.payload["items"][0] == {
        "productId": str(lamp.id),
        "quantity": 3,
        "unitPrice": {"amount": "19.99", "currency": "USD"},
    }


@pytest.mark.parametrize("quantity", [0, -1, 1001])
def test_quantities_outside_1_to_1000_are_refused(quantity: int) -> None:
    lamp = product(stock=5000)
    with pytest.raises(DomainError) as error:
        place_order(
            user_id=uuid.uuid4(),
            lines=[OrderLine(lamp.id, 1), OrderLine(lamp.id, quantity)],
            products={lamp.id: lamp},
            now=NOW,
        )
    assert (Code.BAD_USER_INPUT, ("items", "1", "quantity")) in codes(error)


def test_quantity_1000_is_allowed() -> None:
    lamp = product(stock=1000)
    placed = place_order(
        user_id=uuid.uuid4(), lines=[OrderLine(lamp.id, 1000)], products={lamp.id: lamp}, now=NOW
    )
    assert placed.items[0].quantity == 1000


def test_empty_and_oversized_orders_are_refused() -> None:
    with pytest.raises(DomainError) as error:
        place_order(user_id=uuid.uuid4(), lines=[], products={}, now=NOW)
    assert codes(error) == [(Code.BAD_USER_INPUT, ("items",))]
    many = [product() for _ in range(MAX_LINES + 1)]
    with pytest.raises(DomainError) as error:
        place_order(
            user_id=uuid.uuid4(),
            lines=[OrderLine(p.id, 1) for p in many],
            products={p.id: p for p in many},
            now=NOW,
        )
    assert codes(error) == [(Code.BAD_USER_INPUT, ("items",))]
    placed = place_order(
        user_id=uuid.uuid4(),
        lines=[OrderLine(p.id, 1) for p in many[:MAX_LINES]],
        products={p.id: p for p in many},
        now=NOW,
    )
    assert len(placed.items) == MAX_LINES


def test_mixed_currencies_are_a_currency_mismatch() -> None:
    usd, jpy = product(100, "USD"), product(500, "JPY")
    with pytest.raises(DomainError) as error:
        place_order(
            user_id=uuid.uuid4(),
            lines=[OrderLine(usd.id, 1), OrderLine(jpy.id, 1)],
            products={usd.id: usd, jpy.id: jpy},
            now=NOW,
        )
    assert codes(error) == [(Code.CURRENCY_MISMATCH, ("items", "1", "productId"))]


def test_unknown_products_and_short_stock_are_all_reported() -> None:
    lamp = product(stock=2)
    with pytest.raises(DomainError) as error:
        place_order(
            user_id=uuid.uuid4(),
            lines=[OrderLine(uuid.uuid4(), 1), OrderLine(lamp.id, 3)],
            products={lamp.id: lamp},
            now=NOW,
        )
    assert codes(error) == [
        (Code.PRODUCT_NOT_FOUND, ("items", "0", "productId")),
        (Code.INSUFFICIENT_STOCK, ("items", "1", "quantity")),
    ]


def test_a_product_appears_on_one_line_only() -> None:
    lamp = product()
    with pytest.raises(DomainError) as error:
        place_order(
            user_id=uuid.uuid4(),
            lines=[OrderLine(lamp.id, 1), OrderLine(lamp.id, 2)],
            products={lamp.id: lamp},
            now=NOW,
        )
    assert codes(error) == [(Code.BAD_USER_INPUT, ("items", "1", "productId"))]


@pytest.mark.parametrize("target", [OrderStatus.FULFILLED, OrderStatus.CANCELLED])
def test_a_placed_order_can_be_fulfilled_or_cancelled_once(target: OrderStatus) -> None:
    lamp = product()
    placed = place_order(
        user_id=uuid.uuid4(), lines=[OrderLine(lamp.id, 1)], products={lamp.id: lamp}, now=NOW
    )
    later = datetime(2026, 5, 2, tzinfo=UTC)
    changed, event = transition(placed.order, target, stream_version=1, now=later)
    assert changed.status is target
    assert changed.updated_at == later
    assert event.version == 2
    assert event.type == ("OrderFulfilled" if target is OrderStatus.FULFILLED else "OrderCancelled")
    assert event.payload == {"from": "PLACED", "to": target.value}
    for again in (OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.PLACED):
        with pytest.raises(DomainError) as error:
            transition(changed, again, stream_version=2, now=later)
        assert codes(error) == [(Code.INVALID_TRANSITION, None)]


def test_placed_cannot_become_placed() -> None:
    lamp = product()
    placed = place_order(
        user_id=uuid.uuid4(), lines=[OrderLine(lamp.id, 1)], products={lamp.id: lamp}, now=NOW
    )
    with pytest.raises(DomainError) as error:
        transition(placed.order, OrderStatus.PLACED, stream_version=1, now=NOW)
    assert codes(error) == [(Code.INVALID_TRANSITION, None)]
