"""Payment providers: the interface, Stripe (official SDK) and the demo sandbox.

:func:`get_provider` returns the provider named by the ``MEMSTORE_PAYMENT_PROVIDER``
setting (``stripe`` unless a demo sets ``test`` explicitly) or by a stored
payment's ``provider`` field. ``checks.py`` refuses the sandbox with DEBUG off.
"""

from __future__ import annotations

from .. import conf
from .base import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    RefundRequest,
    RefundResult,
)
from .stripe import StripeProvider, WebhookSignatureError, webhook_event
from .test import CARD_DECLINED, CARD_SUCCESS, CARD_TRANSIENT, TestProvider

__all__ = [
    "CARD_DECLINED",
    "CARD_SUCCESS",
    "CARD_TRANSIENT",
    "ChargeOutcome",
    "ChargeRequest",
    "ChargeResult",
    "PaymentProvider",
    "ProviderError",
    "RefundRequest",
    "RefundResult",
    "StripeProvider",
    "TestProvider",
    "WebhookSignatureError",
    "get_provider",
    "webhook_event",
]


def get_provider(name: str | None = None) -> PaymentProvider:
    """The provider called ``name``, or the configured one."""
    name = name or conf.payment_provider()
    if name == "test":
        return TestProvider()
    if name == "stripe":
        return StripeProvider(api_key=conf.stripe_secret_key(), api_base=conf.stripe_api_base())
    raise ValueError(f"unknown payment provider {name!r}")
