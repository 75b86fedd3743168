"""Issue 13 item 4: one login limiter (django-axes) for the web login, /admin/ and the
password-to-token API, per client address with backoff; a stranger cannot lock a user out.

Real PostgreSQL (axes stores attempts there), Django's test client with REMOTE_ADDR set.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from memstore.accounts.services import user_create

pytestmark = pytest.mark.django_db

PASSWORD = "correct-Horse-9"
STRANGER = "203.0.113.66"
OWNER = "198.51.100.20"


@pytest.fixture
def dora(db: None) -> Any:
    user = user_create(username="dora", password=PASSWORD)
    user.is_staff = True
    user.is_superuser = True
    user.save()
    return user


def _api_login(password: str, address: str) -> Any:
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/tokens", {"username": "dora", "password": password}, format="json"
    )


def test_thirty_wrong_passwords_on_the_token_api_get_429(dora: Any) -> None:
    statuses = [_api_login("wrong", STRANGER).status_code for _ in range(29)]
    assert statuses[:4] == [401] * 4  # the 5th failure locks the address
    assert set(statuses[4:]) == {429}
    locked = _api_login(PASSWORD, STRANGER)  # the 30th: right, but still locked
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "registry.too_many_attempts"
    assert int(locked["Retry-After"]) > 0


def test_right_password_from_another_address_works_after_a_strangers_failures(dora: Any) -> None:
    for _ in range(25):  # 30 a minute would meet DRF's general throttle first
        _api_login("wrong", STRANGER)
        Client(REMOTE_ADDR=STRANGER).post(
            "/accounts/login/", {"username": "dora", "password": "wrong"}
        )
    assert _api_login(PASSWORD, OWNER).status_code == 201
    web = Client(REMOTE_ADDR=OWNER).post(
        "/accounts/login/", {"username": "dora", "password": PASSWORD}
    )
    assert web.status_code == 302


def test_web_login_shows_a_lockout_page(dora: Any) -> None:
    client = Client(REMOTE_ADDR=STRANGER)
    for _ in range(30):
        client.post("/accounts/login/", {"username": "dora", "password": "wrong"})
    page = client.post("/accounts/login/", {"username": "dora", "password": PASSWORD})
    assert page.status_code == 429
    assert b"Too many failed attempts" in page.content
    assert not page.wsgi_request.user.is_authenticated


def test_admin_login_is_limited_too(dora: Any) -> None:
    client = Client(REMOTE_ADDR=STRANGER)
    for _ in range(30):
        client.post("/admin/login/", {"username": "dora", "password": "wrong"})
    page = client.post("/admin/login/?next=/admin/", {"username": "dora", "password": PASSWORD})
    assert page.status_code == 429
    assert b"Too many failed attempts" in page.content
    assert (
        Client(REMOTE_ADDR=OWNER)
        .post("/admin/login/?next=/admin/", {"username": "dora", "password": PASSWORD})
        .status_code
        == 302
    )


def test_the_lock_grows_with_further_failures(dora: Any) -> None:
    first = None
    for _ in range(12):
        response = _api_login("wrong", STRANGER)
        if response.status_code == 429 and first is None:
            first = int(response["Retry-After"])
    assert first is not None
    assert int(_api_login("wrong", STRANGER)["Retry-After"]) > first
