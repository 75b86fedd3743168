from __future__ import annotations

import pytest

from memstore.accounts.models import ApiToken, SigningKey
from memstore.accounts.selectors import api_token_by_raw
from protocol import SigningKey as ProtocolKey

pytestmark = pytest.mark.django_db


def test_token_is_shown_once_and_works(bob_client, buyer):
    response = bob_client.post(
        "/accounts/tokens/", {"name": "laptop", "scopes": ["read", "publish:bob"]}, follow=True
    )
    html = response.content.decode()
    token = ApiToken.objects.get(user=buyer)
    assert sorted(token.scopes) == ["publish:bob", "read"]
    raw = html.split('id="new-token" class="mono" readonly value="')[1].split('"')[0]
    assert raw.startswith("mst_") and api_token_by_raw(raw) == token
    assert raw not in bob_client.get("/accounts/tokens/").content.decode()


def test_token_scopes_offered_are_the_users_namespaces(bob_client):
    html = bob_client.get("/accounts/tokens/").content.decode()
    assert 'value="publish:bob"' in html and 'value="publish:acme"' not in html
    bad = bob_client.post("/accounts/tokens/", {"name": "x", "scopes": ["publish:acme"]})
    assert bad.status_code == 400


def test_token_revoke(bob_client, buyer):
    bob_client.post("/accounts/tokens/", {"name": "t", "scopes": ["read"]})
    token = ApiToken.objects.get(user=buyer)
    bob_client.post(f"/accounts/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert b"revoked" in bob_client.get("/accounts/tokens/").content


def test_register_and_revoke_a_signing_key(bob_client):
    key = ProtocolKey.generate()
    response = bob_client.post(
        "/accounts/keys/",
        {"namespace": "bob", "public_key": key.public_key.to_text(), "label": "laptop"},
    )
    assert response.status_code == 302
    row = SigningKey.objects.get(namespace__name="bob")
    assert row.keyid == key.keyid and row.label == "laptop"
    bob_client.post(f"/accounts/keys/bob/{key.keyid}/revoke", {"reason": "lost laptop"})
    row.refresh_from_db()
    assert row.revoked_at is not None and row.revocation_reason == "lost laptop"


def test_register_refuses_a_bad_key_and_foreign_namespaces(bob_client):
    bad = bob_client.post(
        "/accounts/keys/", {"namespace": "bob", "public_key": "ed25519:nope", "label": ""}
    )
    assert bad.status_code == 400 and b"registry.bad_key" in bad.content
    foreign = bob_client.post(
        "/accounts/keys/",
        {"namespace": "acme", "public_key": ProtocolKey.generate().public_key.to_text()},
    )
    assert (
        foreign.status_code == 400
        and not SigningKey.objects.filter(namespace__name="acme").exists()
    )
