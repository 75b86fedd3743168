"""Fixtures of the commerce tests: settings that choose Stripe through localstripe."""

from __future__ import annotations

from typing import Any

import pytest

from memstore.commerce.providers import PaymentProvider, get_provider
from memstore.testing.plugin import StripeServer

WEBHOOK_SECRET = "whsec_memstore_test"


@pytest.fixture
def stripe_provider(stripe_server: StripeServer, settings: Any) -> PaymentProvider:
    """Settings choose Stripe (the SDK over HTTP to localstripe) for this test."""
    settings.MEMSTORE_PAYMENT_PROVIDER = "stripe"
    settings.MEMSTORE_STRIPE_SECRET_KEY = stripe_server.secret_key
    settings.MEMSTORE_STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MEMSTORE_STRIPE_API_BASE = stripe_server.api_base
    return get_provider()
