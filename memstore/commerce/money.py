"""Money as an integer amount of minor units plus an ISO 4217 currency code.

Never floats. :class:`Money` is validated when built from outside data and is
then trusted. Not here: exchange rates (a cart is in one currency) or tax.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..currencies import currency_exponent, is_price_currency
from .errors import CurrencyError

__all__ = ["CURRENCY_EXPONENTS", "Money", "format_money"]

#: The currencies the web forms offer first, with their exponents (any ISO 4217
#: currency in use is accepted: ``memstore.currencies``).
CURRENCY_EXPONENTS: dict[str, int] = {
    code: currency_exponent(code)
    for code in ("EUR", "USD", "GBP", "CHF", "CAD", "AUD", "SEK", "JPY")
}

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise CurrencyError("amount must be an integer number of minor units")
        if not is_price_currency(self.currency):
            raise CurrencyError(
                f"{self.currency!r} is not an ISO 4217 currency in use (EUR, USD, JPY ...)"
            )

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def fraction_bps(self, basis_points: int) -> Money:
        """``basis_points``/10000 of this amount, rounded half up (for fees)."""
        return Money((self.amount_minor * basis_points + 5000) // 10000, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyError(f"cannot combine {self.currency} and {other.currency}")

    def __str__(self) -> str:
        return format_money(self.amount_minor, self.currency)


def format_money(amount_minor: int, currency: str) -> str:
    """``1999, "EUR"`` -> ``"€19.99"``; ``0`` -> ``"Free"``; unknown currency -> code."""
    if amount_minor == 0:
        return "Free"
    exponent = currency_exponent(currency) if is_price_currency(currency) else 2
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10**exponent)
    number = f"{units:,}" if exponent == 0 else f"{units:,}.{minor:0{exponent}d}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"
