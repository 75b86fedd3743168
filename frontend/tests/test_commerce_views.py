from __future__ import annotations

import re

import pytest

from memstore.commerce.models import Order, Payment
from memstore.commerce.providers import CARD_DECLINED, CARD_SUCCESS, CARD_TRANSIENT
from memstore.commerce.selectors import user_owns_pack
from memstore.packs.models import Entitlement

pytestmark = pytest.mark.django_db

CARD = {"expiry": "12/34", "cvc": "123"}


def keys_in(html):
    return {
        "idempotency_key": re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html).group(1),
        "payment_key": re.search(r'name="payment_key" value="([0-9a-f]+)"', html).group(1),
    }


def checkout_key(client, url):
    return keys_in(client.get(url).content.decode())


def test_buying_with_the_success_card(bob_client, buyer, publish):
    version = publish("docs", price=1999)
    key = checkout_key(bob_client, "/p/acme/docs/buy")
    response = bob_client.post(
        "/p/acme/docs/buy", {**key, "card_number": "4242 4242 4242 4242", **CARD}
    )
    order = Order.objects.get(buyer=buyer)
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.public_id}"
    assert order.status == "paid" and user_owns_pack(user=buyer, pack=version.pack)
    receipt = bob_client.get(response["Location"]).content.decode()
    assert "memos install acme/docs" in receipt and "€19.99" in receipt
    library = bob_client.get("/accounts/library/").content.decode()
    assert "acme/docs" in library
    assert "In your library" in bob_client.get("/p/acme/docs").content.decode()


def test_declined_card_shows_the_reason_and_a_fresh_key(bob_client, buyer, publish):
    publish("docs", price=1999)
    key = checkout_key(bob_client, "/p/acme/docs/buy")
    response = bob_client.post("/p/acme/docs/buy", {**key, "card_number": CARD_DECLINED, **CARD})
    html = response.content.decode()
    assert response.status_code == 402 and "declined" in html
    new_key = keys_in(html)
    assert new_key["idempotency_key"] == key["idempotency_key"]
    assert new_key["payment_key"] != key["payment_key"]
    assert not Entitlement.objects.filter(user=buyer).exists()
    ok = bob_client.post("/p/acme/docs/buy", {**new_key, "card_number": CARD_SUCCESS, **CARD})
    assert ok.status_code == 302 and Order.objects.get().status == "paid"


def test_transient_card_succeeds_through_the_retry(bob_client, buyer, publish, settings):
    settings.MEMSTORE_CHARGE_BACKOFF_S = 0
    publish("docs", price=1999)
    key = checkout_key(bob_client, "/p/acme/docs/buy")
    response = bob_client.post("/p/acme/docs/buy", {**key, "card_number": CARD_TRANSIENT, **CARD})
    assert response.status_code == 302
    assert Payment.objects.get().attempts == 2


def test_double_submit_charges_once(bob_client, buyer, publish):
    publish("docs", price=1999)
    key = checkout_key(bob_client, "/p/acme/docs/buy")
    data = {**key, "card_number": CARD_SUCCESS, **CARD}
    first = bob_client.post("/p/acme/docs/buy", data)
    second = bob_client.post("/p/acme/docs/buy", data)
    assert first.status_code == 302 and second.status_code == 302  # the second lands in the library
    assert Order.objects.count() == 1 and Payment.objects.count() == 1


def test_invalid_card_form_is_refused(bob_client, publish):
    publish("docs", price=1999)
    key = checkout_key(bob_client, "/p/acme/docs/buy")
    response = bob_client.post(
        "/p/acme/docs/buy", {**key, "card_number": "abc", "expiry": "13/99", "cvc": "1"}
    )
    assert response.status_code == 400 and not Order.objects.exists()


def test_checkout_needs_login_and_a_paid_pack(client, bob_client, publish):
    publish("docs", price=1999)
    publish("free")
    assert client.logout() is None
    assert bob_client.get("/p/acme/free/buy").status_code == 302


def test_free_claim_in_one_click(bob_client, buyer, publish):
    version = publish("free")
    response = bob_client.post("/p/acme/free/claim")
    assert response.status_code == 302 and response["Location"] == "/accounts/library/"
    assert user_owns_pack(user=buyer, pack=version.pack)
    assert bob_client.post("/p/acme/free/claim").status_code == 302  # idempotent
    assert Order.objects.count() == 1


def test_orders_of_others_are_not_visible(client, bob_client, buyer, publish):
    publish("free")
    bob_client.post("/p/acme/free/claim")
    order = Order.objects.get()
    from memstore.accounts.services import user_create

    client.force_login(user_create(username="eve", password="x-Secret-123"))
    assert client.get(f"/orders/{order.public_id}").status_code == 404


def test_checkout_labels_sandbox_payments_only_when_the_sandbox_is_chosen(
    bob_client, publish, settings
):
    publish("docs", price=1999)
    sandbox = bob_client.get("/p/acme/docs/buy").content.decode()
    assert 'id="sandbox-payments"' in sandbox and "4242 4242 4242 4242" in sandbox
    settings.MEMSTORE_PAYMENT_PROVIDER = "stripe"
    real = bob_client.get("/p/acme/docs/buy").content.decode()
    assert 'id="sandbox-payments"' not in real and "Sandbox cards" not in real
    assert "sandbox mode" not in real
