"""The beat task settles what a crash left unfulfilled, through the service, exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum

from memstore.commerce import services, tasks
from memstore.commerce.models import LedgerEntry, Order
from memstore.commerce.providers import CARD_SUCCESS, TestProvider
from memstore.packs.models import Entitlement

from .factories import make_pack, make_user

pytestmark = pytest.mark.django_db


class Crash(Exception):
    pass


def _crash(payment):
    raise Crash


def test_reconcile_task_fulfils_a_charged_order_once():
    buyer = make_user()
    pack = make_pack(price=800)
    order = services.order_create(buyer=buyer, packs=[pack], idempotency_key="o")
    with pytest.raises(Crash):
        services.payment_capture(
            order=order,
            payment_method=CARD_SUCCESS,
            idempotency_key="p",
            provider=TestProvider(),
            hooks=services.CaptureHooks(after_charge=_crash),
        )
    assert tasks.reconcile_payments.acks_late is True
    assert tasks.reconcile_payments.apply().get() == 1
    assert tasks.reconcile_payments.apply().get() == 0
    order.refresh_from_db()
    assert order.status == "paid"
    assert Entitlement.objects.filter(user=buyer, pack=pack).count() == 1
    assert LedgerEntry.objects.aggregate(g=Sum("gross_minor"), n=Sum("net_minor")) == {
        "g": 800,
        "n": 720,
    }


def test_reconcile_releases_a_sandbox_payment_that_never_got_an_answer():
    buyer = make_user()
    order = services.order_create(buyer=buyer, packs=[make_pack(price=500)], idempotency_key="o")
    with pytest.raises(Crash):
        services.payment_capture(
            order=order,
            payment_method=CARD_SUCCESS,
            idempotency_key="p",
            provider=TestProvider(),
            hooks=services.CaptureHooks(after_reference=_crash),
        )
    payment = order.payments.get()
    assert payment.status == "pending"
    assert services.payments_reconcile(older_than=timedelta(0)) == 0
    payment.refresh_from_db()
    assert payment.status == "failed"
    again = services.payment_capture(
        order=order, payment_method=CARD_SUCCESS, idempotency_key="p", provider=TestProvider()
    )
    assert again.status == "succeeded"
    assert Order.objects.get(pk=order.pk).status == "paid"
