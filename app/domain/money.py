"""Money as integer minor units, so no amount is ever rounded by floating point."""

from __future__ import annotations

from dataclasses import dataclass

# ISO 4217 minor-unit exponents that differ from the common 2.
_ZERO = ("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF").split(" ")
_THREE = ("BHD IQD JOD KWD LYD OMR TND").split(" ")
_FOUR = ("CLF UYW").split(" ")
_EXPONENTS = {**dict.fromkeys(_ZERO, 0), **dict.fromkeys(_THREE, 3), **dict.fromkeys(_FOUR, 4)}


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Money:
    minor_units: int
    currency: str

    def __str__(self) -> str:
        return f"{self.decimal_string()} {self.currency}"

    def decimal_string(self) -> str:
        """The exact amount with as many decimals as the currency has: "19.99", "500" for JPY."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.minor_units < 0 else ""
        units = abs(self.minor_units)
        if exponent == 0:
            return f"{sign}{units}"
        whole, fraction = divmod(units, 10**exponent)
        return f"{sign}{whole}.{fraction:0{exponent}d}"

    def __mul__(self, factor: int) -> Money:
        return Money(self.minor_units * factor, self.currency)
