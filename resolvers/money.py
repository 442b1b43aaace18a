"""Money on the wire: an exact decimal string, never a float."""

from __future__ import annotations

import strawberry

from app.domain.money import Money as MoneyValue
from resolvers.lazy import assemble


@strawberry.type(description="An exact amount: as many decimals as the currency has.")
class Money:
    amount: str = strawberry.field(description='Exact decimal string: "19.99", "500" for JPY.')
    currency: str = strawberry.field(description="ISO 4217 code.")
    value: strawberry.Private[MoneyValue]

    @classmethod
    def of(cls, value: MoneyValue) -> Money:
        """The object for an amount: made once per process and amount (a page of orders repeats
        its products' prices hundreds of times), only where a query selects money (the fields
        holding it are lazy), its amount formatted at once (it is nearly always selected)."""
        key = (value.minor_units, value.currency)
        made = _MADE.get(key)
        if made is None:
            if len(_MADE) >= _MAX_MADE:
                _MADE.clear()  # a bound on memory; the next amounts fill it again
            made = _MADE[key] = assemble(
                cls, amount=value.decimal_string(), currency=value.currency, value=value
            )
        return made


# Immutable once made (no lazy fields), so one object serves every request that needs it.
_MADE: dict[tuple[int, str], Money] = {}
_MAX_MADE = 10_000
