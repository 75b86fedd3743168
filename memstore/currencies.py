"""The currencies a price may be in: ISO 4217 codes in legal use today, from CLDR (babel).

One rule shared by publishing (``packs.publishing.Price``) and money
(``commerce.money``): a code babel knows as a currency tendered in some
territory today (so ``EUR`` and ``JPY``, never ``ZZZ``, ``XXX``, gold or the
Deutsche Mark), and its minor-unit exponent. Not here: formatting (``commerce.money``).
"""

from __future__ import annotations

import datetime
from functools import lru_cache

from babel import Locale
from babel.numbers import get_currency_precision, get_territory_currencies

__all__ = ["currency_exponent", "is_price_currency", "price_currencies"]


@lru_cache(maxsize=1)
def price_currencies() -> frozenset[str]:
    today = datetime.date.today()
    codes: set[str] = set()
    for territory in Locale("en").territories:
        if isinstance(territory, str) and territory.isalpha():
            codes.update(get_territory_currencies(territory, start_date=today, tender=True))
    return frozenset(c for c in codes if len(c) == 3 and c.isupper())


def is_price_currency(code: str) -> bool:
    return code in price_currencies()


def currency_exponent(code: str) -> int:
    """Digits after the decimal point (JPY 0, EUR 2, BHD 3)."""
    return int(get_currency_precision(code))
