"""Likes: idempotent for signed-in accounts, refused for anonymous callers, CSRF-checked
for browser sessions, invisible packs stay not found."""

from __future__ import annotations

from typing import Any, cast

import pytest
from rest_framework.test import APIClient

from memstore.accounts.models import User
from memstore.packs.models import Pack, PackLike, PackVersion
from memstore.testing.factories import UserFactory, publisher

pytestmark = pytest.mark.django_db

URL = "/api/v1/packs/acme/tips/like"


def new_user() -> User:
    return cast(User, UserFactory())  # type: ignore[no-untyped-call]


@pytest.fixture
def pack() -> Pack:
    _, ns, _ = publisher("acme", "alice")
    return Pack.objects.create(namespace=ns, name="tips")


def test_like_twice_counts_once_and_unlike_is_idempotent(pack: Pack) -> None:
    client = APIClient()
    client.force_authenticate(new_user())
    assert client.put(URL).json() == {"likes": 1, "liked": True}
    assert client.put(URL).json() == {"likes": 1, "liked": True}
    assert PackLike.objects.filter(pack=pack).count() == 1
    assert client.delete(URL).json() == {"likes": 0, "liked": False}
    assert client.delete(URL).json() == {"likes": 0, "liked": False}


def test_anonymous_cannot_like_but_sees_the_count(pack: Pack) -> None:
    PackLike.objects.create(user=new_user(), pack=pack)
    client = APIClient()
    assert client.put(URL).status_code == 401
    assert client.get(URL).json() == {"likes": 1, "liked": False}


def test_a_session_like_needs_the_csrf_token(pack: Pack, client: Any) -> None:
    user = new_user()
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(user)
    assert api.put(URL).status_code == 403
    assert not PackLike.objects.exists()


def test_a_private_pack_is_not_found_to_outsiders(pack: Pack) -> None:
    Pack.objects.filter(pk=pack.pk).update(private=True)
    client = APIClient()
    client.force_authenticate(new_user())
    assert client.put(URL).status_code == 404
    assert not PackVersion.objects.exists()
