"""Issue 13 item 3: no scope escalation through tokens, admin scopes for namespace changes,
a default and a maximum token lifetime. Over HTTP, with real tokens in PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from memstore.accounts.models import ApiToken, Role
from memstore.accounts.selectors import has_role
from memstore.accounts.services import (
    DEFAULT_TOKEN_LIFETIME,
    MAX_TOKEN_LIFETIME,
    api_token_create,
    user_create,
)
from protocol import SigningKey as ProtocolKey

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/auth/tokens"


def bearer(user: Any, *scopes: str) -> APIClient:
    client = APIClient()
    _, raw = api_token_create(user=user, scopes=scopes)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def code_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


@pytest.fixture
def dora() -> Any:
    return user_create(username="dora", password="correct horse")


def test_token_without_tokens_create_scope_cannot_create_token(dora: Any) -> None:
    response = bearer(dora, "read").post(TOKENS, {"scopes": ["read"]}, format="json")
    assert response.status_code == 403, response.content
    assert ApiToken.objects.filter(user=dora).count() == 1


def test_token_cannot_create_token_with_wider_scopes(dora: Any) -> None:
    client = bearer(dora, "read", "tokens:create")
    response = client.post(TOKENS, {"scopes": ["read", "publish:*"]}, format="json")
    assert response.status_code == 403, response.content
    assert code_of(response) == "registry.scope_escalation"
    assert response.json()["error"]["detail"]["scopes"] == ["publish:*"]


def test_token_default_request_no_longer_grants_publish(dora: Any) -> None:
    """The old default (read + publish:*) asked by a read token: narrowed, never wider."""
    response = bearer(dora, "read", "tokens:create").post(TOKENS, {}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["scopes"] == ["read"]


def test_token_with_tokens_create_may_create_a_narrower_token(dora: Any) -> None:
    client = bearer(dora, "publish:*", "tokens:create")
    response = client.post(TOKENS, {"scopes": ["publish:dora"]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["scopes"] == ["publish:dora"]


def test_child_token_never_outlives_its_parent(dora: Any) -> None:
    soon = timezone.now() + timedelta(days=2)
    _, raw = api_token_create(user=dora, scopes=["read", "tokens:create"], expires_at=soon)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post(TOKENS, {"scopes": ["read"], "expires_in_days": 300}, format="json")
    assert response.status_code == 201, response.content
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at == soon


def test_password_login_token_expires_by_default_and_says_when(dora: Any) -> None:
    response = APIClient().post(
        TOKENS, {"username": "dora", "password": "correct horse"}, format="json"
    )
    assert response.status_code == 201, response.content
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.expires_at is not None
    lifetime = token.expires_at - token.created_at
    assert abs(lifetime - DEFAULT_TOKEN_LIFETIME) < timedelta(minutes=1)
    assert response.json()["expires_at"]


def test_explicit_expiry_beyond_the_maximum_is_refused(dora: Any) -> None:
    body = {"username": "dora", "password": "correct horse", "expires_in_days": 366}
    response = APIClient().post(TOKENS, body, format="json")
    assert response.status_code == 400, response.content
    with pytest.raises(Exception, match="at most"):
        api_token_create(user=dora, expires_at=timezone.now() + MAX_TOKEN_LIFETIME * 2)


def test_publish_token_cannot_register_signing_keys(dora: Any) -> None:
    public = ProtocolKey.generate().public_key.to_text()
    response = bearer(dora, "read", "publish:*").post(
        "/api/v1/namespaces/dora/keys", {"public_key": public}, format="json"
    )
    assert response.status_code == 403, response.content
    admin = bearer(dora, "admin:dora").post(
        "/api/v1/namespaces/dora/keys", {"public_key": public}, format="json"
    )
    assert admin.status_code == 201, admin.content


def test_read_token_cannot_change_namespace_members(dora: Any) -> None:
    mallory = user_create(username="mallory", password="pw")
    response = bearer(dora, "read", "publish:*").post(
        "/api/v1/namespaces/dora/members", {"username": "mallory", "role": "owner"}, format="json"
    )
    assert response.status_code == 403, response.content
    namespace = dora.namespaces.get(name="dora")
    assert not has_role(user=mallory, namespace=namespace, at_least=Role.MEMBER)
    ok = bearer(dora, "admin:*").post(
        "/api/v1/namespaces/dora/members", {"username": "mallory", "role": "member"}, format="json"
    )
    assert ok.status_code == 204, ok.content


def test_publish_token_cannot_create_namespaces(dora: Any) -> None:
    response = bearer(dora, "read", "publish:*").post(
        "/api/v1/namespaces/", {"name": "acme"}, format="json"
    )
    assert response.status_code == 403, response.content
