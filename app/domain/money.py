"""Money as integer minor units, so no amount is ever rounded by floating point."""

from __future__ import annotations

from dataclasses import dataclass

# ISO 4217 minor-unit exponents that differ from the common 2.
_ZERO = ("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF").split(" ")
_THREE = ("BHD IQD JOD KWD LYD OMR TND").split(" ")
_FOUR = ("CLF UYW").split(" ")
_EXPONENTS = {**dict.fromkeys(_ZERO, 0), **dict.fromkeys(_THREE, 3), **dict.fromkeys(_FOUR, 4)}


# Active ISO 4217 codes for money one can price goods in (no metals, funds or test codes).
CURRENCIES = frozenset(
    (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN"
        " BWP BYN BZD CAD CDF CHF CLF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR"
        " FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD"
        " JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT"
        " MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG"
        " QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS"
        " TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYI UYU UYW UZS VES VND VUV WST XAF XCD XCG XOF"
        " XPF YER ZAR ZMW ZWG"
    ).split()
)

# Bigger amounts than this are a typing mistake, and they stay far inside a 64-bit column.
MAX_MINOR_UNITS = 10**15


class InvalidMoney(ValueError):
    """An amount or currency a client sent that is not money; `part` says which."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def _decimal(amount: str, exponent: int) -> int:
    whole, dot, fraction = amount.partition(".")
    if not whole.isdigit() or not whole.isascii() or (dot and not fraction.isdigit()):
        raise InvalidMoney("amount", f"{amount[:40]!r} is not a decimal amount such as 19.99")
    if not fraction.isascii() or len(fraction) > exponent:
        raise InvalidMoney("amount", f"{amount[:40]!r} has more than {exponent} decimals")
    return int(whole + fraction.ljust(exponent, "0"))


@dataclass(frozen=True, slots=True)
class Money:
    minor_units: int
    currency: str

    def __str__(self) -> str:
        return f"{self.decimal_string()} {self.currency}"

    def decimal_string(self) -> str:
        """The exact amount with as many decimals as the currency has: "19.99", "500" for JPY."""
        units = self.minor_units
        exponent = _EXPONENTS.get(self.currency, 2)
        if exponent == 2 and units >= 0:  # most money: a page of orders formats hundreds
            return f"{units // 100}.{units % 100:02d}"
        sign = "-" if units < 0 else ""
        units = abs(units)
        if exponent == 0:
            return f"{sign}{units}"
        whole, fraction = divmod(units, 10**exponent)
        return f"{sign}{whole}.{fraction:0{exponent}d}"

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Exact money from a client's decimal string, with no more decimals than the currency."""
        code = currency.strip().upper()
        if code not in CURRENCIES:
            raise InvalidMoney("currency", f"{currency[:10]!r} is not an ISO 4217 currency code")
        minor = _decimal(amount.strip(), currency_exponent(code))
        if minor > MAX_MINOR_UNITS:
            raise InvalidMoney("amount", f"{amount[:40]!r} is too large")
        return cls(minor, code)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.minor_units + other.minor_units, self.currency)

    def __mul__(self, factor: int) -> Money:
        return Money(self.minor_units * factor, self.currency)
