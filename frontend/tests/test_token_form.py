"""Issue 13 item 3: the web token form offers the admin scopes (members, signing keys,
namespace settings need ``admin:NS``), only over the user's own namespaces, and a token
made there works with exactly the scopes ticked."""

from __future__ import annotations

from typing import Any

import pytest

from memstore.accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def test_the_form_offers_admin_scopes_for_the_users_namespaces_only(bob_client: Any) -> None:
    html = bob_client.get("/accounts/tokens/").content.decode()
    assert 'value="admin:*"' in html and 'value="admin:bob"' in html
    assert 'value="tokens:create"' in html
    assert 'value="admin:acme"' not in html
    refused = bob_client.post("/accounts/tokens/", {"name": "x", "scopes": ["admin:acme"]})
    assert refused.status_code == 400
    assert not ApiToken.objects.exists()


def test_a_token_with_an_admin_scope_is_created_with_exactly_the_scopes_ticked(
    bob_client: Any, buyer: Any
) -> None:
    response = bob_client.post(
        "/accounts/tokens/", {"name": "keys", "scopes": ["read", "admin:bob"]}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=buyer)
    assert sorted(token.scopes) == ["admin:bob", "read"]
    assert token.expires_at is not None
