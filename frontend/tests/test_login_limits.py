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


def _spread_failures(count: int) -> None:
    """``count`` wrong passwords for dora, four per address (each under the address limit)."""
    for n in range(count):
        _api_login("wrong", f"192.0.2.{10 + n // 4}")


def test_a_guess_spread_over_many_addresses_locks_new_addresses_for_a_cool_down(
    dora: Any,
) -> None:
    from frontend.ratelimit import ACCOUNT_COOL_OFF, ACCOUNT_FAILURE_LIMIT

    _spread_failures(ACCOUNT_FAILURE_LIMIT)
    refused = _api_login(PASSWORD, "192.0.2.200")  # a new address, the right password
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= ACCOUNT_COOL_OFF.total_seconds()
    # The cool-down is fixed: once the failures are older, the account is open again.
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    expired = timezone.now() - ACCOUNT_COOL_OFF - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=expired)
    assert _api_login(PASSWORD, "192.0.2.201").status_code == 201


def test_the_owner_logs_in_from_her_own_address_during_an_account_wide_lock(dora: Any) -> None:
    from frontend.ratelimit import ACCOUNT_FAILURE_LIMIT

    owner = Client(REMOTE_ADDR=OWNER)
    first = owner.post("/accounts/login/", {"username": "dora", "password": PASSWORD})
    assert first.status_code == 302
    owner.logout()
    _spread_failures(ACCOUNT_FAILURE_LIMIT + 8)
    assert _api_login(PASSWORD, "192.0.2.250").status_code == 429  # a stranger's new address
    assert _api_login(PASSWORD, OWNER).status_code == 201
    web = Client(REMOTE_ADDR=OWNER).post(
        "/accounts/login/", {"username": "dora", "password": PASSWORD}
    )
    assert web.status_code == 302


def test_an_address_lock_with_backoff_outlasts_the_base_cool_off(dora: Any) -> None:
    from datetime import timedelta

    from axes.models import AccessAttempt, AccessAttemptExpiration
    from django.utils import timezone

    from frontend.ratelimit import BASE_COOL_OFF, FAILURE_LIMIT

    for _ in range(FAILURE_LIMIT + 3):  # lock, then three more failures: 5 min * 2**3
        _api_login("wrong", STRANGER)
    # Six minutes later (more than the base cool-off, less than the grown one).
    later = timezone.now() - BASE_COOL_OFF - timedelta(minutes=1)
    AccessAttempt.objects.update(attempt_time=later)
    expiry = AccessAttemptExpiration.objects.get()
    assert expiry.expires_at - timezone.now() > timedelta(minutes=30)
    assert _api_login(PASSWORD, STRANGER).status_code == 429


def test_one_address_never_triggers_the_account_wide_lock(dora: Any) -> None:
    from frontend.ratelimit import ACCOUNT_FAILURE_LIMIT, account_under_attack

    for _ in range(ACCOUNT_FAILURE_LIMIT * 2):
        _api_login("wrong", STRANGER)
    assert not account_under_attack("dora")
