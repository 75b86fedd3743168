"""Fixtures shared by the registry's unit tests (memstore/<app>/tests/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memstore.accounts.actor import Actor
from memstore.testing.factories import publisher


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The blob storage, once local and once S3 (moto server)."""
    name = "local_storage" if request.param == "local" else "s3_storage"
    return request.getfixturevalue(name)


@pytest.fixture
def alice(db: None) -> tuple[Any, Any, Any]:
    """(user, namespace 'acme', signing key) with the key registered."""
    return publisher("acme", "alice")


@pytest.fixture
def alice_actor(alice: tuple[Any, Any, Any]) -> Actor:
    # admin:acme too: tests revoke and register keys with it (keys need admin:NS, issue 13)
    return Actor(user=alice[0], scopes=frozenset({"read", "publish:acme", "admin:acme"}))
