"""Payments through the official Stripe SDK over HTTP to localstripe (a real fake server).

Cards are localstripe's: 4242... succeeds, 4000 0000 0000 0341 is declined when
charged, 4000 0025 0000 3155 needs 3-D Secure. localstripe ignores the
``Idempotency-Key`` header, so "charged once" here is our own guarantee.
"""

from __future__ import annotations

import json
import time

import pytest
import stripe
from django.db.models import Sum
from django.test import Client

from memstore.commerce import services
from memstore.commerce.errors import WebhookSignatureError
from memstore.commerce.models import LedgerEntry, Order, Payment
from memstore.commerce.selectors import user_owns_pack
from memstore.packs.models import Entitlement

from .conftest import WEBHOOK_SECRET
from .factories import make_pack, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CARD_OK = "4242424242424242"
CARD_DECLINED_ON_CHARGE = "4000000000000341"
CARD_NEEDS_3DS = "4000002500003155"


class Crash(Exception):
    """What a process dying between two steps looks like to the caller."""


def _order(price: int = 1500, name: str | None = None) -> tuple[Order, object]:
    buyer = make_user()
    pack = make_pack(price=price, name=name)
    return services.order_create(buyer=buyer, packs=[pack], idempotency_key="o-1"), pack


def _pay(stripe_server, provider, order, card, key="pay-1", hooks=None):
    return services.payment_capture(
        order=order,
        payment_method=stripe_server.payment_method(card),
        idempotency_key=key,
        provider=provider,
        sleep=lambda s: None,
        hooks=hooks,
    )


def _intent(stripe_server, reference):
    client = stripe.StripeClient(
        stripe_server.secret_key, base_addresses={"api": stripe_server.api_base}
    )
    return client.v1.payment_intents.retrieve(reference)


def _signed(event: dict, secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    ts = int(time.time())
    sig = stripe.WebhookSignature._compute_signature(f"{ts}.{payload.decode()}", secret)
    return payload, f"t={ts},v1={sig}"


def test_stripe_payment_succeeds_entitles_and_books_the_sale(stripe_server, stripe_provider):
    order, pack = _order(price=1500)
    payment = _pay(stripe_server, stripe_provider, order, CARD_OK)
    assert payment.status == "succeeded" and payment.reference.startswith("pi_")
    assert _intent(stripe_server, payment.reference).status == "succeeded"
    order.refresh_from_db()
    assert order.status == "paid" and user_owns_pack(user=order.buyer, pack=pack)
    sale = LedgerEntry.objects.get(order_line__order=order)
    assert (sale.gross_minor, sale.fee_minor, sale.net_minor) == (1500, 150, 1350)


def test_stripe_decline_leaves_the_order_pending_and_unentitled(stripe_server, stripe_provider):
    order, pack = _order()
    payment = _pay(stripe_server, stripe_provider, order, CARD_DECLINED_ON_CHARGE)
    assert payment.status == "declined" and payment.error_code == "card_declined"
    order.refresh_from_db()
    assert order.status == "pending" and not user_owns_pack(user=order.buyer, pack=pack)
    assert not LedgerEntry.objects.exists()


def test_stripe_card_needing_authentication_is_declined_not_charged(stripe_server, stripe_provider):
    order, pack = _order()
    payment = _pay(stripe_server, stripe_provider, order, CARD_NEEDS_3DS)
    assert payment.status == "declined" and payment.error_code == "authentication_required"
    assert _intent(stripe_server, payment.reference).status == "requires_action"
    assert not user_owns_pack(user=order.buyer, pack=pack)


def test_stripe_double_submit_charges_once(stripe_server, stripe_provider):
    order, _ = _order()
    method = stripe_server.payment_method(CARD_OK)
    first = services.payment_capture(
        order=order, payment_method=method, idempotency_key="same", provider=stripe_provider
    )
    again = services.payment_capture(
        order=order, payment_method=method, idempotency_key="same", provider=stripe_provider
    )
    other_key = services.payment_capture(
        order=order, payment_method=method, idempotency_key="other", provider=stripe_provider
    )
    assert first.pk == again.pk == other_key.pk
    assert Payment.objects.count() == 1 and Payment.objects.get().attempts == 1
    assert LedgerEntry.objects.count() == 1


def test_stripe_refund_reaches_stripe_and_books_the_reversal(stripe_server, stripe_provider):
    order, pack = _order(price=2000)
    _pay(stripe_server, stripe_provider, order, CARD_OK)
    staff = make_user()
    staff.is_staff = True
    staff.save()
    refund = services.order_refund(order=order, actor=staff, provider=stripe_provider)
    assert refund.reference.startswith("re_")
    assert not user_owns_pack(user=order.buyer, pack=pack)
    sums = LedgerEntry.objects.aggregate(
        g=Sum("gross_minor"), f=Sum("fee_minor"), n=Sum("net_minor")
    )
    assert sums == {"g": 0, "f": 0, "n": 0}


def test_crash_between_charge_and_fulfil_is_settled_by_reconciliation_once(
    stripe_server, stripe_provider
):
    order, pack = _order(price=1000)

    def crash(payment):
        raise Crash

    with pytest.raises(Crash):
        _pay(
            stripe_server,
            stripe_provider,
            order,
            CARD_OK,
            hooks=services.CaptureHooks(after_charge=crash),
        )
    order.refresh_from_db()
    assert order.status == "pending" and not user_owns_pack(user=order.buyer, pack=pack)
    assert services.payments_reconcile(provider=stripe_provider) == 1
    assert services.payments_reconcile(provider=stripe_provider) == 0
    order.refresh_from_db()
    assert order.status == "paid"
    assert Entitlement.objects.filter(user=order.buyer, pack=pack).count() == 1
    assert LedgerEntry.objects.aggregate(n=Sum("net_minor"))["n"] == 900


def test_crash_before_the_answer_is_settled_from_stripe_by_reconciliation(
    stripe_server, stripe_provider
):
    """The intent exists (its id stored) but the process died before confirming."""
    order, pack = _order(price=1000)

    def crash(payment):
        raise Crash

    with pytest.raises(Crash):
        _pay(
            stripe_server,
            stripe_provider,
            order,
            CARD_OK,
            hooks=services.CaptureHooks(after_reference=crash),
        )
    payment = Payment.objects.get()
    assert payment.status == "pending" and payment.reference.startswith("pi_")
    Payment.objects.filter(pk=payment.pk).update(updated_at=payment.updated_at.replace(year=2000))
    assert services.payments_reconcile(provider=stripe_provider) == 0
    payment.refresh_from_db()
    # Never confirmed, so never charged: the buyer may pay again with the same key.
    assert payment.status == "failed" and payment.error_code == "not_confirmed"
    again = _pay(stripe_server, stripe_provider, order, CARD_OK)
    assert again.status == "succeeded"
    assert Entitlement.objects.filter(user=order.buyer, pack=pack).count() == 1


def test_signed_webhook_fulfils_once_and_a_replay_changes_nothing(stripe_server, stripe_provider):
    order, pack = _order(price=1200)

    def crash(payment):
        raise Crash

    with pytest.raises(Crash):
        _pay(
            stripe_server,
            stripe_provider,
            order,
            CARD_OK,
            hooks=services.CaptureHooks(after_charge=crash),
        )
    payment = Payment.objects.get()
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": payment.reference, "object": "payment_intent"}},
    }
    payload, signature = _signed(event)
    web = Client()
    url = "/api/v1/payments/stripe/webhook"
    first = web.post(url, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
    replay = web.post(
        url, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    assert first.status_code == 200 and first.json()["outcome"] == "fulfilled"
    assert replay.status_code == 200 and replay.json()["outcome"] == "no_change"
    assert Entitlement.objects.filter(user=order.buyer, pack=pack).count() == 1
    assert LedgerEntry.objects.count() == 1


def test_webhook_with_a_forged_signature_is_refused(stripe_server, stripe_provider):
    event = {"id": "evt_x", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_x"}}}
    payload, signature = _signed(event, secret="whsec_attacker")
    answer = Client().post(
        "/api/v1/payments/stripe/webhook",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "commerce.webhook_signature"
    with pytest.raises(WebhookSignatureError):
        services.webhook_receive(payload=payload, signature="")
