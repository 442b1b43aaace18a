"""Money on the wire: an exact decimal string, never a float."""

from __future__ import annotations

import strawberry

from app.domain.money import Money as MoneyValue


@strawberry.type(description="An exact amount: as many decimals as the currency has.")
class Money:
    amount: str = strawberry.field(description='Exact decimal string: "19.99", "500" for JPY.')
    currency: str = strawberry.field(description="ISO 4217 code.")

    @classmethod
    def of(cls, value: MoneyValue) -> Money:
        return cls(amount=value.decimal_string(), currency=value.currency)
