"""The exception tree of the commerce app; every error carries a stable ``code``.

Tree::

    CommerceError                    commerce.*
    ├── IllegalTransitionError       commerce.illegal_transition
    ├── PaymentDeclinedError         commerce.payment_declined
    ├── PaymentFailedError           commerce.payment_failed  (transient, retries exhausted)
    ├── NotPurchasableError          commerce.not_purchasable
    ├── AlreadyOwnedError            commerce.already_owned
    ├── RefundNotAllowedError        commerce.refund_not_allowed
    └── CurrencyError                commerce.currency

Not here: HTTP status mapping (that belongs to the views) or provider-level
errors (``providers.ProviderError``), which services translate into these.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyOwnedError",
    "CommerceError",
    "CurrencyError",
    "IllegalTransitionError",
    "NotPurchasableError",
    "PaymentDeclinedError",
    "PaymentFailedError",
    "RefundNotAllowedError",
]


class CommerceError(Exception):
    code = "commerce.error"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class IllegalTransitionError(CommerceError):
    code = "commerce.illegal_transition"


class PaymentDeclinedError(CommerceError):
    code = "commerce.payment_declined"


class PaymentFailedError(CommerceError):
    code = "commerce.payment_failed"


class NotPurchasableError(CommerceError):
    code = "commerce.not_purchasable"


class AlreadyOwnedError(CommerceError):
    code = "commerce.already_owned"


class RefundNotAllowedError(CommerceError):
    code = "commerce.refund_not_allowed"


class CurrencyError(CommerceError):
    code = "commerce.currency"
