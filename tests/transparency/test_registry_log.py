"""The registry's transparency log: events appended with the event, proofs that verify.

Real registry (Django, PostgreSQL); proofs checked with :mod:`protocol.merkle`
and the roots with pymerkle as an independent oracle.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pymerkle import InmemoryTree

from protocol import PublicKey
from protocol import merkle as m
from protocol.tree_head import SignedTreeHead

pytestmark = [pytest.mark.integration]


def _get(client: Any, url: str, **params: Any) -> Any:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    return response.json()


def _head(client: Any) -> tuple[SignedTreeHead, PublicKey]:
    body = _get(client, "/api/v1/log/tree-head")
    key = PublicKey.from_text(body["public_key"])
    return SignedTreeHead.from_dict(body).verify(key), key


def _entries(client: Any, size: int) -> list[dict[str, Any]]:
    rows = _get(client, "/api/v1/log/entries", start=0, end=size)["entries"]
    return [json.loads(base64.b64decode(r["body"])) for r in rows]


@pytest.mark.django_db
def test_publish_yank_and_key_events_are_logged_with_proofs_that_verify(
    tmp_path: Path, client: Any, local_storage: Any
) -> None:
    from memstore.accounts.actor import Actor
    from memstore.accounts.services import signing_key_register, signing_key_revoke
    from memstore.packs.models import PackVersion
    from memstore.packs.services import pack_publish, version_yank
    from memstore.testing.factories import publisher
    from memstore.testing.packs import build_pack
    from protocol import SigningKey

    user, ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    pack_publish(
        actor=actor,
        pack_file=build_pack(tmp_path, name="acme/tips", keys=[key], memories=["one"]),
    )
    version = PackVersion.objects.get(pack__name="tips")
    second = SigningKey.generate()
    signing_key_register(actor=actor, namespace=ns, public_key=second.public_key.to_text())
    signing_key_revoke(actor=actor, namespace=ns, keyid=second.keyid, reason="rotated")
    signing_key_revoke(actor=actor, namespace=ns, keyid=second.keyid)  # already: logged once
    version_yank(actor=actor, version=version, reason="bad")

    head, _ = _head(client)
    entries = _entries(client, head.size)
    kinds = [(e["kind"], e["namespace"]) for e in entries]
    assert kinds == [
        ("key.register", "acme"),  # the fixture's first key
        ("publish", "acme"),
        ("key.register", "acme"),
        ("key.revoke", "acme"),
        ("yank", "acme"),
    ]
    assert [e["index"] for e in entries] == list(range(5))
    published = entries[1]
    assert (published["pack"], published["version"]) == ("acme/tips", "1.0.0")
    assert published["manifest_sha256"] == version.manifest_sha256
    assert entries[3]["keyid"] == second.keyid and entries[3]["reason"] == "rotated"

    oracle = InmemoryTree(algorithm="sha256")
    rows = _get(client, "/api/v1/log/entries", start=0, end=head.size)["entries"]
    for row in rows:
        oracle.append_entry(base64.b64decode(row["body"]))
    assert oracle.get_root(head.size) == head.root_hash

    proof = _get(
        client, "/api/v1/log/proof/inclusion",
        manifest_sha256=version.manifest_sha256, size=head.size,
    )  # fmt: skip
    body = base64.b64decode(proof["entry"]["body"])
    path = [bytes.fromhex(p) for p in proof["path"]]
    m.verify_inclusion(m.leaf_hash(body), proof["entry"]["index"], head.size, path, head.root_hash)
    by_hash = _get(
        client, "/api/v1/log/proof/inclusion", hash=proof["entry"]["leaf_hash"], size=head.size
    )
    assert by_hash == proof == _get(client, "/api/v1/log/proof/inclusion", leaf=1, size=head.size)

    for first in range(head.size + 1):
        old = oracle.get_root(first) if first else m.EMPTY_ROOT
        consistency = _get(client, "/api/v1/log/proof/consistency", first=first, second=head.size)
        m.verify_consistency(
            first, head.size, old, head.root_hash, [bytes.fromhex(p) for p in consistency["path"]]
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "params", "status", "code"),
    [
        ("/api/v1/log/entries", {"start": 0, "end": 1001}, 400, "registry.log_bad_range"),
        ("/api/v1/log/entries", {"start": 5, "end": 4}, 400, "registry.log_bad_range"),
        ("/api/v1/log/proof/inclusion", {"size": 9, "leaf": 0}, 400, "registry.log_bad_size"),
        ("/api/v1/log/proof/inclusion", {"size": 1}, 400, "registry.invalid_request"),
        ("/api/v1/log/proof/consistency", {"first": 2, "second": 1}, 400, "registry.log_bad_size"),
    ],
)
def test_bad_log_queries_answer_stable_codes(
    client: Any, url: str, params: dict[str, Any], status: int, code: str
) -> None:
    from memstore.testing.factories import publisher

    publisher("acme", "alice")  # one entry: the key registration
    response = client.get(url, params)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_an_unknown_entry_is_not_found_and_a_later_entry_is_not_in_an_older_tree(
    client: Any,
) -> None:
    from memstore.testing.factories import publisher

    publisher("acme", "alice")
    publisher("beta", "bob")
    response = client.get("/api/v1/log/proof/inclusion", {"size": 2, "hash": "0" * 64})
    assert response.json()["error"]["code"] == "registry.log_entry_not_found"
    response = client.get("/api/v1/log/proof/inclusion", {"size": 1, "leaf": 1})
    assert response.json()["error"]["code"] == "registry.log_bad_size"


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_get_consecutive_indices_and_one_tree() -> None:
    from django.db import connection

    from memstore.transparency import services

    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                services.append_event(kind="publish", namespace=f"ns{n}", subject=str(i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    from memstore.transparency.models import LogEntry

    rows = list(LogEntry.objects.order_by("index"))
    assert [r.index for r in rows] == list(range(20))
    oracle = InmemoryTree(algorithm="sha256")
    for r in rows:
        oracle.append_entry(bytes(r.body))
    assert services.tree_head().root_hash == oracle.get_root(20)


@pytest.mark.django_db
def test_a_failed_event_leaves_no_entry() -> None:
    from django.db import transaction

    from memstore.transparency import services
    from memstore.transparency.models import LogEntry, LogNode

    def publish_that_fails() -> None:
        with transaction.atomic():
            services.append_event(kind="publish", namespace="acme")
            raise RuntimeError("the publish failed after the append")

    with pytest.raises(RuntimeError):
        publish_that_fails()
    assert not LogEntry.objects.exists() and not LogNode.objects.exists()
    with pytest.raises(ValueError):
        services.append_event(kind="nonsense", namespace="acme")


@pytest.mark.django_db
def test_a_compromise_declaration_is_logged_once_as_a_revocation_with_its_start(
    client: Any,
) -> None:
    from datetime import UTC, datetime

    from memstore.accounts.actor import Actor
    from memstore.testing.factories import publisher
    from memstore.tuf.services import key_compromised

    user, ns, key = publisher("acme", "alice")
    since = datetime(2026, 1, 2, tzinfo=UTC)
    actor = Actor(user=user, scopes=None)
    key_compromised(actor=actor, namespace=ns, keyid=key.keyid, since=since)
    key_compromised(actor=actor, namespace=ns, keyid=key.keyid, since=since)
    head, _ = _head(client)
    entries = _entries(client, head.size)
    assert [e["kind"] for e in entries] == ["key.register", "key.revoke"]
    assert entries[1]["compromised_since"] == since.isoformat()
    assert entries[1]["keyid"] == key.keyid


@pytest.mark.django_db
def test_the_head_row_of_an_existing_log_is_rebuilt_from_its_nodes() -> None:
    import importlib

    from django.apps import apps

    from memstore.transparency import services
    from memstore.transparency.models import LogHead

    for i in range(11):
        services.append_event(kind="publish", namespace="acme", subject=str(i))
    before = services.tree_head().root_hash
    assert before == services.root_hash(11)
    LogHead.objects.all().delete()
    migration = importlib.import_module("memstore.transparency.migrations.0002_log_head")
    migration.head_from_nodes(apps, None)
    assert services.tree_head().root_hash == before
    services.append_event(kind="publish", namespace="acme", subject="12")
    assert services.tree_head().root_hash == services.root_hash(12)
