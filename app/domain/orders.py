"""Placing an order and moving it through its life: PLACED, then FULFILLED or CANCELLED."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from app.domain.errors import Code, DomainError, Problem, check
from app.domain.events import Event, EventType, StreamType, new_event
from app.domain.models import Order, OrderItem, OrderStatus, Product
from app.domain.money import Money

MAX_LINES = 100
MIN_QUANTITY = 1
MAX_QUANTITY = 1000

_NEXT: dict[OrderStatus, dict[OrderStatus, EventType]] = {
    OrderStatus.PLACED: {
        OrderStatus.FULFILLED: EventType.ORDER_FULFILLED,
        OrderStatus.CANCELLED: EventType.ORDER_CANCELLED,
    },
}


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: str
    order_id: UUID


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Which orders a listing shows (its page is cut in SQL by the repository)."""

    status: OrderStatus | None = None
    created_after: datetime | None = None
    user_id: UUID | None = None
    """Only this user's orders: how a customer's `orders` list is restricted, in SQL."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: Order
    items: tuple[OrderItem, ...]
    event: Event


def _line_field(index: int, name: str) -> tuple[str, ...]:
    return ("items", str(index), name)


def check_lines(lines: Sequence[OrderLine]) -> None:
    """The shape rules that need no product data, all reported together."""
    if not lines:
        raise DomainError.of(Code.BAD_USER_INPUT, "An order needs at least one line", "items")
    if len(lines) > MAX_LINES:
        raise DomainError.of(
            Code.BAD_USER_INPUT, f"An order has at most {MAX_LINES} lines", "items"
        )
    problems: list[Problem] = []
    seen: set[UUID] = set()
    for index, line in enumerate(lines):
        if not MIN_QUANTITY <= line.quantity <= MAX_QUANTITY:
            problems.append(
                Problem(
                    Code.BAD_USER_INPUT,
                    f"Quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}",
                    _line_field(index, "quantity"),
                )
            )
        if line.product_id in seen:
            problems.append(
                Problem(
                    Code.BAD_USER_INPUT,
                    "Each product may appear on one line only; add up the quantities",
                    _line_field(index, "productId"),
                )
            )
        seen.add(line.product_id)
    check(problems)


def lines_fingerprint_source(lines: Sequence[OrderLine]) -> list[list[Any]]:
    """The lines in a canonical form, so the same request in any line order matches itself."""
    return sorted([str(line.product_id), line.quantity] for line in lines)


def place_order(
    *,
    user_id: UUID,
    lines: Sequence[OrderLine],
    products: Mapping[UUID, Product],
    now: datetime,
    order_id: UUID | None = None,
) -> PlacedOrder:
    """An order priced from the products as they are now.

    Stock is checked against the products given, which lets a client hear about every short line
    at once; the database's conditional decrement remains the authority when orders race.
    """
    check_lines(lines)
    problems: list[Problem] = []
    currency: str | None = None
    for index, line in enumerate(lines):
        product = products.get(line.product_id)
        if product is None:
            problems.append(
                Problem(
                    Code.PRODUCT_NOT_FOUND,
                    "No product has this ID",
                    _line_field(index, "productId"),
                )
            )
            continue
        if currency is None:
            currency = product.price.currency
        elif product.price.currency != currency:
            problems.append(
                Problem(
                    Code.CURRENCY_MISMATCH,
                    f"{product.sku} is priced in {product.price.currency}, the order in {currency}",
                    _line_field(index, "productId"),
                )
            )
        if product.stock < line.quantity:
            problems.append(insufficient_stock(index, product.sku, product.stock))
    check(problems)
    assert currency is not None  # check_lines guarantees a line, and every line has a product

    order_id = order_id or uuid.uuid4()
    items = tuple(
        OrderItem(
            id=uuid.uuid4(),
            order_id=order_id,
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price=products[line.product_id].price,
        )
        for line in lines
    )
    total = Money(sum(item.line_total.minor_units for item in items), currency)
    order = Order(
        id=order_id,
        user_id=user_id,
        status=OrderStatus.PLACED,
        total=total,
        created_at=now,
        updated_at=now,
    )
    payload = {
        "userId": str(user_id),
        "status": order.status.value,
        "total": _money(total),
        "items": [
            {
                "productId": str(item.product_id),
                "quantity": item.quantity,
                "unitPrice": _money(item.unit_price),
            }
            for item in items
        ],
    }
    event = new_event(EventType.ORDER_CREATED, StreamType.ORDER, order_id, 1, payload, now)
    return PlacedOrder(order, items, event)


def insufficient_stock(index: int, sku: str, available: int | None = None) -> Problem:
    left = "" if available is None else f"; {available} left"
    return Problem(
        Code.INSUFFICIENT_STOCK, f"Not enough {sku} in stock{left}", _line_field(index, "quantity")
    )


def transition(
    order: Order, target: OrderStatus, *, stream_version: int, now: datetime
) -> tuple[Order, Event]:
    """The order in its new status and the event saying so.

    `stream_version` is the last version recorded for the order; the event takes the next one.
    """
    event_type = _NEXT.get(order.status, {}).get(target)
    if event_type is None:
        raise DomainError.of(
            Code.INVALID_TRANSITION,
            f"A {order.status.value} order cannot become {target.value}",
        )
    changed = dataclasses.replace(order, status=target, updated_at=now)
    payload = {"from": order.status.value, "to": target.value}
    event = new_event(event_type, StreamType.ORDER, order.id, stream_version + 1, payload, now)
    return changed, event


def _money(value: Money) -> dict[str, str]:
    return {"amount": value.decimal_string(), "currency": value.currency}
