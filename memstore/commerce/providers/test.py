"""The built-in, deterministic sandbox provider for demos (no network, no state).

Sandbox cards (any future expiry and any CVC are accepted by the form)::

    4242 4242 4242 4242   always succeeds
    4000 0000 0000 0002   always declined (card_declined)
    4000 0000 0000 0119   fails transiently on the first attempt, succeeds on a retry
    4000 0000 0000 9995   declined (insufficient_funds)

Any other number is declined (``card_not_supported``; ``invalid_number`` if it
fails the Luhn check). References are derived from the idempotency key, so
repeating a key returns the same charge: the provider is idempotent without
keeping state, across processes (and so cannot answer ``retrieve``). Not for
production: settings choose it only when ``MEMSTORE_PAYMENT_PROVIDER`` is ``test``
(``scripts/run`` sets it; ``check --deploy`` refuses it with DEBUG off).
"""

from __future__ import annotations

import hashlib

from .base import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    RefundRequest,
    RefundResult,
)

__all__ = [
    "CARD_DECLINED",
    "CARD_INSUFFICIENT_FUNDS",
    "CARD_SUCCESS",
    "CARD_TRANSIENT",
    "TestProvider",
]

CARD_SUCCESS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_TRANSIENT = "4000000000000119"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"


def luhn_ok(digits: str) -> bool:
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _ref(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


class TestProvider(PaymentProvider):
    __test__ = False  # not a pytest test class
    name = "test"

    def charge(self, request: ChargeRequest) -> ChargeResult:
        number = "".join(ch for ch in request.payment_method if ch in "0123456789")
        last4 = number[-4:]
        if request.on_reference is not None:
            request.on_reference(_ref("ch_test_", request.idempotency_key))
        if not luhn_ok(number):
            return ChargeResult(
                ChargeOutcome.DECLINED,
                card_last4=last4,
                error_code="invalid_number",
                error_message="The card number is not valid.",
            )
        brand = "visa" if number.startswith("4") else "card"
        if number == CARD_SUCCESS or (number == CARD_TRANSIENT and request.attempt >= 2):
            return ChargeResult(
                ChargeOutcome.SUCCEEDED,
                reference=_ref("ch_test_", request.idempotency_key),
                card_brand=brand,
                card_last4=last4,
            )
        if number == CARD_TRANSIENT:
            return ChargeResult(
                ChargeOutcome.TRANSIENT_FAILURE,
                card_brand=brand,
                card_last4=last4,
                error_code="processing_error",
                error_message="The processor had a temporary problem; try again.",
            )
        if number == CARD_INSUFFICIENT_FUNDS:
            code, message = "insufficient_funds", "The card has insufficient funds."
        elif number == CARD_DECLINED:
            code, message = "card_declined", "The card was declined."
        else:
            code, message = "card_not_supported", "This sandbox card is not supported."
        return ChargeResult(
            ChargeOutcome.DECLINED,
            card_brand=brand,
            card_last4=last4,
            error_code=code,
            error_message=message,
        )

    def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(reference=_ref("re_test_", request.idempotency_key))
