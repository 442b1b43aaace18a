from __future__ import annotations

import pytest

from app.domain.money import Money, currency_exponent


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1999, "USD", "19.99"),
        (5, "USD", "0.05"),
        (0, "EUR", "0.00"),
        (500, "JPY", "500"),
        (1234, "KWD", "1.234"),
        (-250, "USD", "-2.50"),
        (10**15 + 1, "USD", "10000000000000.01"),
    ],
)
def test_decimal_string_has_the_currency_exponent(minor: int, currency: str, expected: str) -> None:
    assert Money(minor, currency).decimal_string() == expected


def test_exponents_follow_iso_4217() -> None:
    assert [currency_exponent(c) for c in ("USD", "JPY", "BHD", "CLF")] == [2, 0, 3, 4]


def test_multiplying_keeps_integer_minor_units() -> None:
    assert Money(333, "USD") * 3 == Money(999, "USD")
