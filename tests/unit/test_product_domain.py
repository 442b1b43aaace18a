"""Product and profile rules, events and money parsing, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.domain.errors import Code, DomainError
from app.domain.events import EventType, StreamType, new_event
from app.domain.models import Profile
from app.domain.money import InvalidMoney, Money
from app.domain.products import (
    PriceInput,
    StockReason,
    change_product,
    check_restock,
    new_product,
    stock_changed,
)
from app.domain.profiles import ProfileChanges, update_profile

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("19.99", "USD", Money(1999, "USD")),
        ("19.9", "usd", Money(1990, "USD")),
        ("20", "USD", Money(2000, "USD")),
        ("500", "JPY", Money(500, "JPY")),
        ("1.234", "KWD", Money(1234, "KWD")),
        ("0", "EUR", Money(0, "EUR")),
    ],
)
def test_money_parses_exact_decimals(amount: str, currency: str, expected: Money) -> None:
    assert Money.parse(amount, currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "part"),
    [
        ("19.999", "USD", "amount"),
        ("5.5", "JPY", "amount"),
        ("-1", "USD", "amount"),
        ("1e3", "USD", "amount"),
        ("", "USD", "amount"),
        ("1.", "USD", "amount"),
        ("١٢", "USD", "amount"),
        ("9" * 20, "USD", "amount"),
        ("1", "XXX", "currency"),
        ("1", "US", "currency"),
        ("1", "XAU", "currency"),
    ],
)
def test_money_refuses_what_is_not_money(amount: str, currency: str, part: str) -> None:
    with pytest.raises(InvalidMoney) as error:
        Money.parse(amount, currency)
    assert error.value.part == part


def test_new_product_normalises_and_records_its_creation() -> None:
    product, event = new_product(
        sku=" lamp-1 ",
        name=" Desk lamp ",
        description=None,
        price=PriceInput("19.99", "usd"),
        stock=5,
        now=NOW,
    )
    assert (product.sku, product.name, product.description) == ("LAMP-1", "Desk lamp", "")
    assert product.price == Money(1999, "USD")
    assert (product.version, product.stock) == (1, 5)
    assert (event.type, event.stream_type, event.stream_id, event.version) == (
        "ProductCreated",
        "Product",
        product.id,
        1,
    )
    assert event.payload["price"] == {"amount": "19.99", "currency": "USD"}


def test_new_product_reports_every_bad_field() -> None:
    with pytest.raises(DomainError) as error:
        new_product(
            sku="no spaces",
            name=" ",
            description="x" * 5001,
            price=PriceInput("1.5", "ZZZ"),
            stock=-1,
            now=NOW,
        )
    assert [(p.code, p.field) for p in error.value.problems] == [
        (Code.BAD_USER_INPUT, ("sku",)),
        (Code.BAD_USER_INPUT, ("name",)),
        (Code.BAD_USER_INPUT, ("description",)),
        (Code.BAD_USER_INPUT, ("price", "currency")),
        (Code.BAD_USER_INPUT, ("stock",)),
    ]


def test_change_product_bumps_the_version_only_when_something_changes() -> None:
    product, _ = new_product(
        sku="A1", name="Lamp", description="", price=PriceInput("10", "USD"), stock=1, now=NOW
    )
    same, none = change_product(product, name="Lamp", price=PriceInput("10.00", "USD"), now=NOW)
    assert none is None
    assert same is product
    changed, event = change_product(product, price=PriceInput("12.50", "USD"), now=NOW)
    assert changed.price == Money(1250, "USD")
    assert changed.name == "Lamp"
    assert changed.version == 2
    assert event is not None
    assert (event.type, event.version) == ("ProductUpdated", 2)
    assert event.payload == {"price": {"amount": "12.50", "currency": "USD"}}


def test_restock_quantities_and_stock_events() -> None:
    for bad in (0, -3, 1_000_001):
        with pytest.raises(DomainError):
            check_restock(bad)
    check_restock(1)
    product_id, order_id = uuid.uuid4(), uuid.uuid4()
    event = stock_changed(
        product_id=product_id,
        version=7,
        delta=-2,
        stock=3,
        reason=StockReason.ORDER,
        now=NOW,
        order_id=order_id,
    )
    assert (event.type, event.stream_id, event.version) == ("ProductStockChanged", product_id, 7)
    assert event.payload == {"delta": -2, "stock": 3, "reason": "order", "orderId": str(order_id)}
    with pytest.raises(ValueError, match="below zero"):
        stock_changed(
            product_id=product_id, version=8, delta=-9, stock=-1, reason=StockReason.ORDER, now=NOW
        )


def test_events_need_json_payloads_versions_from_one_and_aware_times() -> None:
    stream = uuid.uuid4()
    with pytest.raises(TypeError):
        new_event(EventType.ORDER_CREATED, StreamType.ORDER, stream, 1, {"x": object()}, NOW)
    with pytest.raises(ValueError, match="start at 1"):
        new_event(EventType.ORDER_CREATED, StreamType.ORDER, stream, 0, {}, NOW)
    with pytest.raises(ValueError, match="aware"):
        new_event(EventType.ORDER_CREATED, StreamType.ORDER, stream, 1, {}, datetime(2026, 1, 1))
    payload = {"nested": {"list": [1, 2]}}
    event = new_event(EventType.ORDER_CREATED, StreamType.ORDER, stream, 1, payload, NOW)
    payload["nested"]["list"].append(3)
    assert event.payload == {"nested": {"list": [1, 2]}}, "the event keeps its own copy"


def test_profile_updates_change_only_what_was_sent() -> None:
    user_id = uuid.uuid4()
    profile = Profile(user_id, "Ada", "Lovelace", "Ada Lovelace")
    same, none = update_profile(
        profile, ProfileChanges(), email="ada@example.com", stream_version=0, now=NOW
    )
    assert (same, none) == (profile, None)
    changed, event = update_profile(
        profile,
        ProfileChanges(last_name=None, display_name="  "),
        email="ada@example.com",
        stream_version=3,
        now=NOW,
    )
    assert (changed.first_name, changed.last_name, changed.display_name) == ("Ada", None, "Ada")
    assert event is not None
    assert (event.type, event.stream_type, event.version) == ("ProfileUpdated", "User", 4)
    assert event.payload == {"lastName": None, "displayName": "Ada"}
    with pytest.raises(DomainError) as error:
        update_profile(
            profile,
            ProfileChanges(first_name="x" * 101),
            email="ada@example.com",
            stream_version=0,
            now=NOW,
        )
    assert error.value.problems[0].field == ("firstName",)
