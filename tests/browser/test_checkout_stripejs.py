"""Checkout through Stripe.js in a real Chromium, against localstripe (issue 13 item 2).

The page loads Stripe.js from localstripe (``<api base>/js.stripe.com/v3/``, its fake of
Stripe's script), the card is typed into Stripe.js's fields, and the form that reaches
our server carries only a payment method id: never a card number. The server charges it
through the official SDK (PaymentIntent); localstripe's signed webhook then arrives at
``/api/v1/payments/stripe/webhook`` and changes nothing more (charged once).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from memstore.accounts.actor import Actor
from memstore.commerce.models import LedgerEntry, Order, Payment
from memstore.packs.models import Entitlement, Pack
from memstore.packs.services import Price, pack_publish
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from memstore.testing.plugin import StripeServer

from .conftest import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WEBHOOK_SECRET = "whsec_browser_checkout"
CARD_OK = "4242424242424242"
CARD_DECLINED_ON_CHARGE = "4000000000000341"


@pytest.fixture
def stripe_site(site: str, stripe_server: StripeServer, settings: Any) -> str:
    """The live server paying through Stripe (SDK -> localstripe), webhooks to it."""
    settings.MEMSTORE_PAYMENT_PROVIDER = "stripe"
    settings.MEMSTORE_STRIPE_SECRET_KEY = stripe_server.secret_key
    settings.MEMSTORE_STRIPE_PUBLISHABLE_KEY = "pk_test_memstore"
    settings.MEMSTORE_STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MEMSTORE_STRIPE_API_BASE = stripe_server.api_base
    settings.MEMSTORE_STRIPE_JS_URL = ""  # derived: localstripe's Stripe.js
    httpx.post(
        f"{stripe_server.api_base}/_config/webhooks/memstore-browser",
        data={"url": f"{site}/api/v1/payments/stripe/webhook", "secret": WEBHOOK_SECRET},
        timeout=10,
    ).raise_for_status()
    return site


@pytest.fixture
def webhooks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each webhook that reached the registry did (``fulfilled``, ``no_change``...)."""
    from memstore.commerce import services

    outcomes: list[str] = []
    receive = services.webhook_receive

    def recording(**kwargs: Any) -> str:
        outcome = receive(**kwargs)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(services, "webhook_receive", recording)
    return outcomes


@pytest.fixture
def paid_pack(tmp_path: Path, local_storage: Any) -> Pack:
    user, _, key = publisher("acme", "alice")
    version = pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(
            tmp_path, name="acme/atlas", keys=[key], title="Atlas of Tides",
            memories=["High tide follows the moon by about fifty minutes a day."],
        ),
        price=Price(1250, "EUR"),
    )  # fmt: skip
    return version.pack


def _type_card(page: Any, number: str) -> None:
    """localstripe's Stripe.js draws plain inputs named by placeholder inside #card-element
    (Stripe's real one draws them in an iframe); either way they are not our form's."""
    box = page.locator("#card-element")
    box.locator("input[placeholder=number]").fill(number)
    box.locator("input[placeholder=exp_month]").fill("12")
    box.locator("input[placeholder=exp_year]").fill("40")
    box.locator("input[placeholder=cvc]").fill("123")
    box.locator("input[placeholder=postal_code]").fill("75001")


def _posted_forms(page: Any) -> list[str]:
    bodies: list[str] = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data or "")
        if r.method == "POST" and r.url.endswith("/buy") else None,
    )  # fmt: skip
    return bodies


def _wait_for(condition: Any, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_paying_through_stripe_js_sends_no_card_number_and_the_webhook_settles_once(
    page: Any, stripe_site: str, stripe_server: StripeServer, paid_pack: Pack, shot: Any,
    webhooks: list[str],
) -> None:
    from memstore.commerce.conf import stripe_js_url

    sign_up(page, stripe_site, "gina")
    bodies = _posted_forms(page)
    page.goto(f"{stripe_site}/p/acme/atlas/buy")
    assert page.locator(f"script[src='{stripe_js_url()}']").count() == 1
    assert stripe_js_url().startswith(stripe_server.api_base)
    assert page.locator("#sandbox-payments").count() == 0  # no sandbox label with Stripe
    _type_card(page, CARD_OK)
    shot(page, "checkout-stripejs")
    page.click("#pay")
    page.wait_for_selector("text=Payment received")
    assert bodies and all(CARD_OK not in body and "4242" not in body for body in bodies)
    assert all("payment_method=card_" in b or "payment_method=pm_" in b for b in bodies)
    payment = Payment.objects.get(order__buyer__username="gina")
    assert payment.provider == "stripe" and payment.reference.startswith("pi_")
    assert payment.status == "succeeded" and payment.attempts == 1
    # localstripe's signed payment_intent.succeeded webhook reaches the registry; it is
    # applied as "no change": still one order, one ledger line, one entitlement.
    assert _wait_for(lambda: "no_change" in webhooks), f"no webhook applied: {webhooks}"
    assert "fulfilled" not in webhooks  # the page's charge had settled it already
    assert Order.objects.filter(buyer__username="gina").count() == 1
    assert LedgerEntry.objects.filter(order_line__order__buyer__username="gina").count() == 1
    assert Entitlement.objects.filter(user__username="gina", revoked_at__isnull=True).count() == 1


def test_a_card_declined_through_stripe_js_grants_nothing_then_another_card_pays(
    page: Any, stripe_site: str, paid_pack: Pack, shot: Any
) -> None:
    sign_up(page, stripe_site, "hugo")
    page.goto(f"{stripe_site}/p/acme/atlas/buy")
    _type_card(page, CARD_DECLINED_ON_CHARGE)
    page.click("#pay")
    page.wait_for_selector("text=Your card was declined")
    shot(page, "checkout-stripejs-declined")
    assert not Entitlement.objects.filter(user__username="hugo").exists()
    assert Payment.objects.get(order__buyer__username="hugo").status == "declined"
    _type_card(page, CARD_OK)
    page.click("#pay")
    page.wait_for_selector("text=Payment received")
    assert Order.objects.filter(buyer__username="hugo").count() == 1
    assert Entitlement.objects.filter(user__username="hugo", revoked_at__isnull=True).count() == 1
