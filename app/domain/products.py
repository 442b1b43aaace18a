"""The catalogue's rules: what a product may look like and how its stock may move."""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from app.domain.errors import Code, DomainError, Problem, check
from app.domain.events import Event, EventType, StreamType, new_event
from app.domain.models import Product
from app.domain.money import InvalidMoney, Money
from app.domain.text import one_line

SKU_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_STOCK = 1_000_000_000
MAX_RESTOCK = 1_000_000


@dataclass(frozen=True, slots=True)
class StockMove:
    """A product's state right after a stock update, as the database returned it."""

    version: int
    stock: int
    price: Money


class StockReason(StrEnum):
    ORDER = "order"
    CANCELLATION = "cancellation"
    RESTOCK = "restock"


@dataclass(frozen=True, slots=True)
class PriceInput:
    amount: str
    currency: str


def parse_price(price: PriceInput, problems: list[Problem]) -> Money | None:
    try:
        return Money.parse(price.amount, price.currency)
    except InvalidMoney as error:
        problems.append(Problem(Code.BAD_USER_INPUT, str(error), ("price", error.part)))
        return None


def _name(value: str, problems: list[Problem]) -> str:
    return one_line(value, "name", MAX_NAME, problems, required=True)


def _description(value: str | None, problems: list[Problem]) -> str:
    description = (value or "").strip()
    if len(description) > MAX_DESCRIPTION:
        problems.append(
            Problem(
                Code.BAD_USER_INPUT,
                f"Description must be at most {MAX_DESCRIPTION} characters",
                ("description",),
            )
        )
    return description


def _snapshot(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": {"amount": product.price.decimal_string(), "currency": product.price.currency},
        "stock": product.stock,
    }


def new_product(
    *,
    sku: str,
    name: str,
    description: str | None,
    price: PriceInput,
    stock: int,
    now: datetime,
    product_id: UUID | None = None,
) -> tuple[Product, Event]:
    problems: list[Problem] = []
    clean_sku = sku.strip().upper()
    if not SKU_PATTERN.match(clean_sku):
        problems.append(
            Problem(
                Code.BAD_USER_INPUT,
                "SKU must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or"
                " digit",
                ("sku",),
            )
        )
    clean_name = _name(name, problems)
    clean_description = _description(description, problems)
    money = parse_price(price, problems)
    if not 0 <= stock <= MAX_STOCK:
        problems.append(
            Problem(Code.BAD_USER_INPUT, f"Stock must be between 0 and {MAX_STOCK}", ("stock",))
        )
    check(problems)
    assert money is not None
    product = Product(
        id=product_id or uuid.uuid4(),
        sku=clean_sku,
        name=clean_name,
        description=clean_description,
        price=money,
        stock=stock,
        version=1,
        created_at=now,
        updated_at=now,
    )
    event = new_event(
        EventType.PRODUCT_CREATED, StreamType.PRODUCT, product.id, 1, _snapshot(product), now
    )
    return product, event


def change_product(
    product: Product,
    *,
    name: str | None = None,
    description: str | None = None,
    price: PriceInput | None = None,
    now: datetime,
) -> tuple[Product, Event | None]:
    """The product with the given fields changed (None leaves one as it is).

    Returns no event when nothing actually changes, so a repeated update leaves no trace.
    """
    problems: list[Problem] = []
    changes: dict[str, Any] = {}
    if name is not None and (clean := _name(name, problems)) != product.name:
        changes["name"] = clean
    if description is not None:
        clean_description = _description(description, problems)
        if clean_description != product.description:
            changes["description"] = clean_description
    if price is not None:
        money = parse_price(price, problems)
        if money is not None and money != product.price:
            changes["price"] = money
    check(problems)
    if not changes:
        return product, None
    changed = dataclasses.replace(product, **changes, version=product.version + 1, updated_at=now)
    payload = {
        key: (
            {"amount": value.decimal_string(), "currency": value.currency}
            if isinstance(value, Money)
            else value
        )
        for key, value in changes.items()
    }
    event = new_event(
        EventType.PRODUCT_UPDATED, StreamType.PRODUCT, product.id, changed.version, payload, now
    )
    return changed, event


def check_restock(quantity: int) -> None:
    if not 1 <= quantity <= MAX_RESTOCK:
        raise DomainError.of(
            Code.BAD_USER_INPUT,
            f"Restock quantity must be between 1 and {MAX_RESTOCK}",
            "quantity",
        )


def stock_ceiling_reached(quantity: int) -> DomainError:
    """A restock that would take the stock past MAX_STOCK (the database column's safe range)."""
    return DomainError.of(
        Code.BAD_USER_INPUT,
        f"Restocking {quantity} would take the stock above the maximum of {MAX_STOCK}",
        "quantity",
    )


def stock_changed(
    *,
    product_id: UUID,
    version: int,
    delta: int,
    stock: int,
    reason: StockReason,
    now: datetime,
    order_id: UUID | None = None,
) -> Event:
    """The event for a stock movement the database has already applied.

    `version` is the product version the conditional update returned, so concurrent movements
    of one product each get their own stream version.
    """
    if stock < 0:
        raise ValueError("stock never goes below zero")
    payload: dict[str, Any] = {"delta": delta, "stock": stock, "reason": reason.value}
    if order_id is not None:
        payload["orderId"] = str(order_id)
    return new_event(
        EventType.PRODUCT_STOCK_CHANGED, StreamType.PRODUCT, product_id, version, payload, now
    )
