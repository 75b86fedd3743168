"""Fixtures for the marketplace's view tests: users, signed packs published for real."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from memstore.accounts.actor import Actor
from memstore.accounts.models import Namespace, User
from memstore.accounts.services import user_create
from memstore.packs.models import PackVersion
from memstore.packs.services import Price, pack_publish
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

PASSWORD = "pw-Secret-123"
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()  # the login limiter lives in the cache


@pytest.fixture
def acme(db: None) -> tuple[User, Namespace, Any]:
    """alice owns 'acme' and has a registered signing key (private key returned)."""
    return publisher("acme", "alice")


@pytest.fixture
def publish(tmp_path: Path, acme: Any, local_storage: Any):  # type: ignore[no-untyped-def]
    """publish(name, version=..., price=..., **pack options) -> PackVersion, signed by alice."""
    user, _, key = acme

    def _publish(
        name: str = "docs",
        *,
        version: str = "1.0.0",
        price: int = 0,
        currency: str = "EUR",
        private: bool = False,
        **options: Any,
    ) -> PackVersion:
        work = tmp_path / f"b{next(_seq)}"
        work.mkdir()
        pack_file = build_pack(work, name=f"acme/{name}", version=version, keys=[key], **options)
        return pack_publish(
            actor=Actor(user=user, scopes=None),
            pack_file=pack_file,
            private=private,
            price=Price(price, currency if price else ""),
        )

    return _publish


@pytest.fixture
def buyer(db: None) -> User:
    return user_create(username="bob", password=PASSWORD, email="bob@example.org")


@pytest.fixture
def bob_client(client: Any, buyer: User) -> Any:
    client.force_login(buyer)
    return client
