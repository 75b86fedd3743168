"""Payment providers: the interface, the sandbox provider and a real-processor skeleton.

:func:`get_provider` returns the provider named by the ``MEMSTORE_PAYMENT_PROVIDER``
setting (``test`` by default) or by a stored payment's ``provider`` field.
"""

from __future__ import annotations

from django.conf import settings

from .base import (
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    RefundRequest,
    RefundResult,
)
from .stripe_like import StripeLikeProvider
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
    "StripeLikeProvider",
    "TestProvider",
    "get_provider",
]


def get_provider(name: str | None = None) -> PaymentProvider:
    """The provider called ``name``, or the configured default."""
    name = name or getattr(settings, "MEMSTORE_PAYMENT_PROVIDER", "test")
    if name == "test":
        return TestProvider()
    if name == "stripe":
        # A real deployment injects its transport here; without one every call
        # raises ProviderError rather than pretending to charge.
        return StripeLikeProvider(api_key=getattr(settings, "MEMSTORE_STRIPE_API_KEY", ""))
    raise ValueError(f"unknown payment provider {name!r}")
