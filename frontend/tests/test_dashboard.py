from __future__ import annotations

import json

import pytest

from memstore.commerce.models import Order
from memstore.commerce.providers import CARD_SUCCESS
from memstore.commerce.selectors import user_owns_pack
from memstore.commerce.services import order_create, payment_capture
from memstore.packs.models import PackVersion
from memstore.testing.packs import build_pack
from protocol import SigningKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, acme):
    client.force_login(acme[0])
    return client


def test_upload_publishes_through_the_publish_service(alice_client, acme, tmp_path, local_storage):
    pack_file = build_pack(
        tmp_path, name="acme/web", keys=[acme[2]], memories=["uploaded from the web"]
    )
    with pack_file.open("rb") as fh:
        response = alice_client.post(
            "/dashboard/", {"file": fh, "price": "4.50", "currency": "EUR"}
        )
    assert response.status_code == 302
    version = PackVersion.objects.get(pack__name="web")
    assert (version.price_amount_minor, version.price_currency) == (450, "EUR")
    assert version.ingest.status == "pending"
    html = alice_client.get("/dashboard/").content.decode()
    assert "acme/web" in html and "data-ingest-url" in html
    status = json.loads(alice_client.get(f"/dashboard/versions/{version.pk}/ingest").content)
    assert status == {"status": "pending", "memories": 0, "error": ""}


def test_upload_refuses_an_unsigned_or_foreign_signed_pack_with_its_code(
    alice_client, tmp_path, local_storage
):
    unsigned = build_pack(tmp_path, name="acme/bad")
    with unsigned.open("rb") as fh:
        response = alice_client.post("/dashboard/", {"file": fh, "currency": "EUR"})
    assert response.status_code == 400 and b"signature.missing" in response.content
    stranger = build_pack(tmp_path / "s", name="acme/bad2", keys=[SigningKey.generate()])
    with stranger.open("rb") as fh:
        response = alice_client.post("/dashboard/", {"file": fh, "currency": "EUR"})
    assert response.status_code == 400 and b"signature.untrusted" in response.content
    assert not PackVersion.objects.exists()


def test_upload_refuses_bad_prices(alice_client, acme, tmp_path, local_storage):
    pack_file = build_pack(tmp_path, name="acme/web", keys=[acme[2]])
    with pack_file.open("rb") as fh:
        response = alice_client.post(
            "/dashboard/", {"file": fh, "price": "4.505", "currency": "EUR"}
        )
    assert response.status_code == 400 and not PackVersion.objects.exists()


def test_ingest_status_is_for_maintainers_only(bob_client, publish):
    version = publish("docs")
    assert bob_client.get(f"/dashboard/versions/{version.pk}/ingest").status_code == 404


def test_publisher_refunds_a_sale_from_the_dashboard(alice_client, buyer, publish):
    version = publish("docs", price=1000)
    order = order_create(buyer=buyer, packs=[version.pack], idempotency_key="k")
    payment_capture(order=order, payment_method=CARD_SUCCESS, idempotency_key="k")
    html = alice_client.get("/dashboard/").content.decode()
    assert "€9.00" in html and "Refund" in html  # net after the 10 % fee
    alice_client.post(f"/dashboard/orders/{order.public_id}/refund", {"reason": "asked"})
    order.refresh_from_db()
    assert order.status == "refunded" and not user_owns_pack(user=buyer, pack=version.pack)


def test_buyers_cannot_refund(bob_client, buyer, publish):
    version = publish("docs", price=1000)
    order = order_create(buyer=buyer, packs=[version.pack], idempotency_key="k")
    payment_capture(order=order, payment_method=CARD_SUCCESS, idempotency_key="k")
    bob_client.post(f"/dashboard/orders/{order.public_id}/refund")
    assert Order.objects.get().status == "paid"


def test_yank_and_unyank_from_the_dashboard(alice_client, publish):
    version = publish("docs")
    alice_client.post(f"/dashboard/versions/{version.pk}/yank", {"reason": "bad index"})
    version.refresh_from_db()
    assert version.yanked and version.yanked_reason == "bad index"
    assert "Unyank" in alice_client.get("/dashboard/").content.decode()
    alice_client.post(f"/dashboard/versions/{version.pk}/yank", {"undo": "1"})
    version.refresh_from_db()
    assert not version.yanked


def test_strangers_cannot_yank(bob_client, publish):
    version = publish("docs")
    assert (
        bob_client.post(f"/dashboard/versions/{version.pk}/yank", {"reason": "x"}).status_code
        == 404
    )
    version.refresh_from_db()
    assert not version.yanked


def test_create_an_organisation_and_publish_keys_to_it(alice_client):
    from memstore.accounts.models import Membership

    alice_client.post(
        "/dashboard/namespaces", {"name": "lighthouse-co", "display_name": "Lighthouse Co"}
    )
    membership = Membership.objects.get(namespace__name="lighthouse-co")
    assert membership.user.username == "alice" and membership.role == "owner"
    assert 'value="lighthouse-co"' in alice_client.get("/accounts/keys/").content.decode()
    alice_client.post("/dashboard/namespaces", {"name": "Bad Name"})
    assert not Membership.objects.filter(namespace__name="Bad Name").exists()
