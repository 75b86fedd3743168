"""API clients for the API's own tests, made over HTTP (no import of a domain app, so the
api package stays free of cycles with the domains that use it)."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

PASSWORD = "api-tests-Pw-1"


def bearer_client(user: Any, scopes: list[str]) -> APIClient:
    """A client with a fresh token of ``scopes`` for ``user`` (whose password is reset)."""
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    answer = APIClient().post(
        "/api/v1/auth/tokens",
        {"username": user.username, "password": PASSWORD, "scopes": scopes},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['token']}")
    return client
