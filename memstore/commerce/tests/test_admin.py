"""The commerce admin: read-only rows; money moves only through the refund action (services)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from memstore.commerce import selectors, services
from memstore.commerce.models import Order, Refund
from memstore.commerce.providers import CARD_SUCCESS

from .factories import make_pack, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    return client


def _paid_order(buyer: Any, pack: Any) -> Order:
    order = services.order_create(buyer=buyer, packs=[pack], idempotency_key="k-admin")
    services.payment_capture(
        order=order, payment_method=CARD_SUCCESS, idempotency_key="k-admin", sleep=lambda s: None
    )
    order.refresh_from_db()
    return order


def test_the_refund_action_refunds_paid_orders_and_reports_the_others(staff_client: Client) -> None:
    pack = make_pack(name="atlas", price=1999, currency="EUR")
    buyer = make_user("buyer")
    paid = _paid_order(buyer, pack)
    pending = services.order_create(
        buyer=make_user("other"), packs=[pack], idempotency_key="k-pending"
    )
    response = staff_client.post(
        "/admin/commerce/order/",
        {"action": "refund", "_selected_action": [paid.pk, pending.pk]},
        follow=True,
    )
    assert response.status_code == 200
    paid.refresh_from_db()
    pending.refresh_from_db()
    assert (paid.status, pending.status) == ("refunded", "pending")
    assert Refund.objects.count() == 1 and not selectors.user_owns_pack(user=buyer, pack=pack)
    shown = [str(m) for m in response.context["messages"]]
    assert "1 order(s) refunded." in shown
    assert any(str(pending.public_id) in m for m in shown)


def test_commerce_rows_cannot_be_added_changed_or_deleted_in_the_admin(
    staff_client: Client,
) -> None:
    order = _paid_order(make_user("buyer"), make_pack(name="atlas", price=500))
    assert staff_client.get("/admin/commerce/order/add/").status_code == 403
    assert staff_client.get(f"/admin/commerce/order/{order.pk}/delete/").status_code == 403
    page = staff_client.get(f"/admin/commerce/order/{order.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content  # view only
