"""Namespace transfer: owners only, logged in the same transaction, the delegation re-signed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.accounts.models import Membership, Namespace, Role
from memstore.accounts.services import api_token_create, namespace_transfer, user_create
from memstore.errors import ConflictError, ForbiddenError
from memstore.testing.factories import UserFactory, publisher
from memstore.transparency.models import LogEntry
from memstore.tuf.repository import OWNERS
from memstore.tuf.selectors import latest_files

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _tuf_dir(tmp_path: Path, settings: Any) -> None:
    settings.MEMSTORE_TUF_KEY_DIR = tmp_path / "tuf"


def _owners(ns: Namespace) -> list[str]:
    rows = Membership.objects.filter(namespace=ns, role=Role.OWNER)
    return sorted(rows.values_list("user__username", flat=True))


def _delegation(namespace: str) -> dict[str, Any]:
    targets = json.loads(latest_files()["targets.json"])["signed"]
    roles = targets["delegations"]["roles"]
    return next(r for r in roles if r["name"] == f"ns-{namespace}")  # type: ignore[no-any-return]


def test_an_owner_transfers_and_the_log_and_the_delegation_say_so(
    django_capture_on_commit_callbacks: Any,
) -> None:
    alice, ns, key = publisher("acme", "alice")
    UserFactory(username="bob")
    with django_capture_on_commit_callbacks(execute=True):
        namespace_transfer(namespace=ns, to_owner="bob", actor=Actor(user=alice))
    assert _owners(ns) == ["bob"]
    entry = LogEntry.objects.get(kind="namespace.transfer")
    body = json.loads(bytes(entry.body))
    assert (entry.namespace, body["from"], body["to"]) == ("acme", "alice", "bob")
    delegation = _delegation("acme")
    assert delegation[OWNERS] == ["bob"]
    # The keys stay: clients keep judging the namespace by the keys they pinned.
    assert [k["keyid"] for k in delegation["x-memstore-publisher-keys"]] == [key.keyid]


def test_only_an_owner_with_admin_scope_transfers() -> None:
    alice, ns, _ = publisher("acme", "alice")
    maintainer = UserFactory(username="mallory")
    Membership.objects.create(namespace=ns, user=maintainer, role=Role.MAINTAINER)
    with pytest.raises(ForbiddenError):
        namespace_transfer(namespace=ns, to_owner="mallory", actor=Actor(user=maintainer))
    publish_only = Actor(user=alice, scopes=frozenset({"publish:acme"}))
    with pytest.raises(ForbiddenError):
        namespace_transfer(namespace=ns, to_owner="mallory", actor=publish_only)
    assert _owners(ns) == ["alice"]
    assert not LogEntry.objects.filter(kind="namespace.transfer").exists()


def test_a_personal_namespace_or_a_transfer_to_the_owner_is_refused() -> None:
    dora = user_create(username="dora", password="pw")
    UserFactory(username="bob")
    with pytest.raises(ConflictError) as info:
        namespace_transfer(
            namespace=Namespace.objects.get(name="dora"), to_owner="bob", actor=Actor(user=dora)
        )
    assert info.value.code == "registry.personal_namespace"
    alice, ns, _ = publisher("acme", "alice")
    with pytest.raises(ConflictError) as info:
        namespace_transfer(namespace=ns, to_owner="alice", actor=Actor(user=alice))
    assert info.value.code == "registry.already_owner"


def test_a_transfer_the_log_cannot_record_does_not_happen() -> None:
    alice, ns, _ = publisher("acme", "alice")
    UserFactory(username="bob")
    with (
        mock.patch("memstore.transparency.events.append_event", side_effect=RuntimeError("db")),
        pytest.raises(RuntimeError),
    ):
        namespace_transfer(namespace=ns, to_owner="bob", actor=Actor(user=alice))
    assert _owners(ns) == ["alice"]


def test_the_transfer_api_needs_admin_scope_and_answers_the_new_owner() -> None:
    alice, ns, _ = publisher("acme", "alice")
    UserFactory(username="bob")
    url = "/api/v1/namespaces/acme/transfer"
    client = APIClient()
    _, raw = api_token_create(user=alice, scopes=["publish:acme"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    refused = client.post(url, {"to_owner": "bob"}, format="json")
    assert refused.status_code == 403
    _, raw = api_token_create(user=alice, scopes=["admin:acme"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    missing = client.post(url, {"to_owner": "nobody"}, format="json")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "registry.user_not_found"
    answer = client.post(url, {"to_owner": "bob"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"namespace": "acme", "owner": "bob"}
    assert _owners(ns) == ["bob"]
