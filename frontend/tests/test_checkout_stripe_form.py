"""Issue 13 item 2: with Stripe (the default provider) the checkout form takes no card
number; it loads Stripe.js and posts only a payment method id."""

from __future__ import annotations

import re
from typing import Any

import pytest

from memstore.commerce.models import Order, Payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_settings(settings: Any) -> Any:
    settings.MEMSTORE_PAYMENT_PROVIDER = "stripe"
    settings.MEMSTORE_STRIPE_SECRET_KEY = "sk_test_unused"
    settings.MEMSTORE_STRIPE_PUBLISHABLE_KEY = "pk_test_shown"
    settings.MEMSTORE_STRIPE_API_BASE = ""
    settings.MEMSTORE_STRIPE_JS_URL = ""
    return settings


def test_the_stripe_checkout_page_has_no_card_field_and_loads_stripe_js(
    bob_client: Any, publish: Any, stripe_settings: Any
) -> None:
    publish("docs", price=1999)
    html = bob_client.get("/p/acme/docs/buy").content.decode()
    assert 'src="https://js.stripe.com/v3/"' in html  # Stripe's own script in production
    assert 'data-publishable-key="pk_test_shown"' in html
    assert 'name="card_number"' not in html and 'name="cvc"' not in html
    assert 'id="card-element"' in html and "sandbox-payments" not in html


def test_the_stripe_checkout_refuses_a_raw_card_number(
    bob_client: Any, buyer: Any, publish: Any, stripe_settings: Any
) -> None:
    publish("docs", price=1999)
    html = bob_client.get("/p/acme/docs/buy").content.decode()
    keys = dict(re.findall(r'name="(idempotency_key|payment_key)" value="([0-9a-f]+)"', html))
    for method in ("4242424242424242", "tok_visa_but_not_a_method", ""):
        response = bob_client.post(
            "/p/acme/docs/buy", {**keys, "payment_method": method, "card_number": method}
        )
        assert response.status_code == 400
    assert not Order.objects.filter(buyer=buyer).exists()
    assert not Payment.objects.exists()


def test_localstripe_serves_the_stripe_js_in_tests(stripe_settings: Any) -> None:
    from memstore.commerce.conf import stripe_js_url

    stripe_settings.MEMSTORE_STRIPE_API_BASE = "http://127.0.0.1:8420"
    assert stripe_js_url() == "http://127.0.0.1:8420/js.stripe.com/v3/"
    stripe_settings.MEMSTORE_STRIPE_JS_URL = "https://js.example/v3/"
    assert stripe_js_url() == "https://js.example/v3/"
