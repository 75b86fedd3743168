"""The payment provider interface: what a card processor must do for the marketplace.

A provider charges and refunds; it never sees our models. Every call carries
an idempotency key: a provider must return the *same* result for a repeated
key instead of charging again (real processors implement this server side;
see Stripe's ``Idempotency-Key`` header). Services retry transient failures
with the same key, so a retry can never double-charge.

Not here: persistence, order logic, or which provider is used (``get_provider``
in this package reads settings).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "ChargeOutcome",
    "ChargeRequest",
    "ChargeResult",
    "PaymentProvider",
    "ProviderError",
    "RefundRequest",
    "RefundResult",
]


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"  # final: do not retry
    TRANSIENT_FAILURE = "transient_failure"  # retry with the same idempotency key


class ProviderError(Exception):
    """The provider could not be reached or answered nonsense (not a decline)."""

    code = "commerce.provider_error"


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    amount_minor: int
    currency: str
    #: What the customer pays with: a sandbox card number for the test provider,
    #: a tokenised payment method id (``pm_...``) for a real processor.
    payment_method: str
    idempotency_key: str
    description: str = ""
    attempt: int = 1
    metadata: dict[str, str] = field(default_factory=dict)
    #: Called with the processor's reference as soon as it exists, before any money
    #: moves, so that the caller can store it (reconciliation retrieves by it).
    on_reference: Callable[[str], None] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: ChargeOutcome
    reference: str = ""  # the processor's charge id
    card_brand: str = ""
    card_last4: str = ""
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class RefundRequest:
    charge_reference: str
    amount_minor: int
    currency: str
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundResult:
    reference: str


class PaymentProvider(abc.ABC):
    """Charge and refund. Implementations must be idempotent per ``idempotency_key``."""

    #: Stored on each payment, so a refund goes back through the provider that charged.
    name: str = "abstract"

    @abc.abstractmethod
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key. A decline is a result, not an exception;
        :class:`ProviderError` means the outcome is unknown (treat as transient)."""

    def retrieve(self, reference: str) -> ChargeResult | None:
        """The charge's current outcome at the processor, or ``None`` if it cannot say."""
        return None

    @abc.abstractmethod
    def refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a succeeded charge, once per idempotency key."""
