"""Money on the wire: an exact decimal string, never a float."""

from __future__ import annotations

import strawberry

from app.domain.money import Money as MoneyValue
from resolvers.lazy import Lazy, assemble


@strawberry.type(description="An exact amount: as many decimals as the currency has.")
class Money(Lazy):
    amount: str = strawberry.field(description='Exact decimal string: "19.99", "500" for JPY.')
    currency: str = strawberry.field(description="ISO 4217 code.")
    value: strawberry.Private[MoneyValue]

    LAZY = {"amount": lambda money: money.value.decimal_string()}

    @classmethod
    def of(cls, value: MoneyValue) -> Money:
        return assemble(cls, currency=value.currency, value=value)
