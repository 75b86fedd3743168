"""Commerce settings, read in one place (all optional Django settings with defaults).

``MEMSTORE_PAYMENT_PROVIDER``   ``stripe`` (default) or ``test`` (the demo sandbox: only
                                when set explicitly, and never with DEBUG off)
``MEMSTORE_STRIPE_SECRET_KEY``  Stripe secret key (``sk_live_...`` / ``sk_test_...``)
``MEMSTORE_STRIPE_WEBHOOK_SECRET``  the endpoint's signing secret (``whsec_...``)
``MEMSTORE_STRIPE_API_BASE``    another API origin (tests: localstripe); empty = Stripe's
``MEMSTORE_STRIPE_PUBLISHABLE_KEY``  the ``pk_...`` key Stripe.js uses in the browser
``MEMSTORE_STRIPE_JS_URL``      where the checkout page loads Stripe.js from: Stripe's
                                (https://js.stripe.com/v3/) unless set, or localstripe's
                                fake (``<api base>/js.stripe.com/v3/``) when the API base
                                points at localstripe
``MEMSTORE_PLATFORM_FEE_BPS``   the marketplace's fee in basis points (default 1000 = 10 %)
``MEMSTORE_CHARGE_ATTEMPTS``    tries per charge on transient failures (default 3)
``MEMSTORE_CHARGE_BACKOFF_S``   first back-off between tries, doubled each time (default 0.2)
"""

from __future__ import annotations

from django.conf import settings


def payment_provider() -> str:
    return str(getattr(settings, "MEMSTORE_PAYMENT_PROVIDER", "") or "stripe")


def stripe_secret_key() -> str:
    return str(getattr(settings, "MEMSTORE_STRIPE_SECRET_KEY", "") or "")


def stripe_webhook_secret() -> str:
    return str(getattr(settings, "MEMSTORE_STRIPE_WEBHOOK_SECRET", "") or "")


def stripe_api_base() -> str:
    return str(getattr(settings, "MEMSTORE_STRIPE_API_BASE", "") or "")


STRIPE_JS_URL = "https://js.stripe.com/v3/"


def stripe_publishable_key() -> str:
    return str(getattr(settings, "MEMSTORE_STRIPE_PUBLISHABLE_KEY", "") or "")


def stripe_js_url() -> str:
    """Stripe.js: always Stripe's own in production (PCI: the card fields are Stripe's);
    localstripe serves a fake at ``/js.stripe.com/v3/`` that talks to itself."""
    configured = str(getattr(settings, "MEMSTORE_STRIPE_JS_URL", "") or "")
    if configured:
        return configured
    base = stripe_api_base()
    return f"{base.rstrip('/')}/js.stripe.com/v3/" if base else STRIPE_JS_URL


def platform_fee_bps() -> int:
    return int(getattr(settings, "MEMSTORE_PLATFORM_FEE_BPS", 1000))


def charge_attempts() -> int:
    return max(1, int(getattr(settings, "MEMSTORE_CHARGE_ATTEMPTS", 3)))


def charge_backoff_s() -> float:
    return float(getattr(settings, "MEMSTORE_CHARGE_BACKOFF_S", 0.2))
