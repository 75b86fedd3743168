"""The exception tree of the commerce app, a branch of the registry's (``memstore.errors``).

Every error carries a stable ``code`` (``commerce.*``), an HTTP status and a
``detail`` dict, like every :class:`~memstore.errors.RegistryError`, so the one
DRF exception handler (:mod:`memstore.api.errors`) answers them as it answers
the others. Services raise them with ``detail={...}``.

Tree::

    RegistryError                    (memstore.errors)
    └── CommerceError                commerce.error               400
        ├── IllegalTransitionError   commerce.illegal_transition  409
        ├── PaymentDeclinedError     commerce.payment_declined    402
        ├── PaymentFailedError       commerce.payment_failed      502 (transient, retries exhausted)
        ├── NotPurchasableError      commerce.not_purchasable     409
        ├── AlreadyOwnedError        commerce.already_owned       409
        ├── RefundNotAllowedError    commerce.refund_not_allowed  403
        └── CurrencyError            commerce.currency            400

Not here: provider-level errors (``providers.ProviderError``), which services
translate into these, or what a web page shows for them (``frontend/views``).
"""

from __future__ import annotations

from typing import Any

from ..errors import RegistryError

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


class CommerceError(RegistryError):
    code = "commerce.error"
    status = 400

    def __init__(
        self, message: str, *, code: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code, **(detail or {}))


class IllegalTransitionError(CommerceError):
    code = "commerce.illegal_transition"
    status = 409


class PaymentDeclinedError(CommerceError):
    code = "commerce.payment_declined"
    status = 402


class PaymentFailedError(CommerceError):
    code = "commerce.payment_failed"
    status = 502


class NotPurchasableError(CommerceError):
    code = "commerce.not_purchasable"
    status = 409


class AlreadyOwnedError(CommerceError):
    code = "commerce.already_owned"
    status = 409


class RefundNotAllowedError(CommerceError):
    code = "commerce.refund_not_allowed"
    status = 403


class CurrencyError(CommerceError):
    code = "commerce.currency"
    status = 400


class PaymentInProgressError(CommerceError):
    """Another order of this buyer for the same pack is being charged right now."""

    code = "commerce.payment_in_progress"
    status = 409


class WebhookSignatureError(CommerceError):
    """A webhook whose ``Stripe-Signature`` does not match its body (or is too old)."""

    code = "commerce.webhook_signature"
    status = 400
