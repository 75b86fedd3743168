"""Resolve in one round trip (issue 17): the same answers as the ORM reads, nothing stale.

The rows are read fresh on every request (:mod:`memstore.packs.resolve_read`); what is
remembered per process is only what cannot change under it: the version a spec picks among
given candidate states, and download counts already in the table. Each test changes the
registry between two resolves and checks the second one sees it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from memstore.accounts.actor import ANONYMOUS, Actor
from memstore.accounts.selectors import namespace_keys
from memstore.accounts.services import signing_key_register, user_create
from memstore.packs import resolve_body, selectors
from memstore.packs.models import PackVersion
from memstore.packs.publishing import Price
from memstore.packs.resolve_body import resolve_json
from memstore.packs.resolve_read import resolve_rows
from memstore.packs.services import pack_publish, pack_set_private, version_delete
from memstore.storage.services import get_blob_storage
from memstore.testing.packs import build_pack
from protocol import SigningKey as ProtocolSigningKey

from .blobkit import token_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/resolve/acme/docs"


@pytest.fixture(autouse=True, params=[0, 60], ids=["per-request", "persistent"])
def _connections(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test twice: statements sent as text, and prepared (persistent connections)."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", request.param)


@pytest.fixture
def versions(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> dict[str, PackVersion]:
    return {v: _publish(tmp_path, alice, alice_actor, v) for v in ("1.0.0", "1.1.0", "2.0.0")}


def _publish(tmp_path: Path, alice: Any, actor: Actor, version: str, **kw: Any) -> PackVersion:
    pack_file = build_pack(
        tmp_path, name="acme/docs", version=version, keys=[alice[2]], memories=[version]
    )
    return pack_publish(actor=actor, pack_file=pack_file, **kw)


def _version(spec: str = "^1.0", client: APIClient | None = None) -> Any:
    response = (client or APIClient()).get(URL, {"spec": spec})
    return response.json().get("version", response.status_code)


_SIGNED = re.compile(rb"exp=\d+&sig=[0-9a-f]+|\"url_expires_at\":\"[^\"]+\"")


def test_the_answer_is_byte_for_byte_the_one_the_orm_reads_give(
    versions: dict[str, PackVersion], alice: Any
) -> None:
    body = APIClient().get(URL, {"spec": "^1.0"}, HTTP_HOST="testserver").content
    # The same answer from the ORM's own reads (pack_get, version_select, namespace_keys).
    pack = selectors.pack_get(actor=ANONYMOUS, namespace="acme", name="docs")
    version = selectors.version_select(pack=pack, spec="^1.0")
    resolution = selectors.Resolution(
        pack=pack, version=version, spec="^1.0", keys=namespace_keys(namespace=pack.namespace)
    )
    request = RequestFactory().get(URL, HTTP_HOST="testserver")
    resolve_body._fixed.clear()  # render the manifest part again, from the ORM's version
    expected = resolve_json(resolution, request, get_blob_storage())  # type: ignore[arg-type]
    # Only the signatures of the URLs and their expiry depend on the second they are made.
    assert _SIGNED.sub(b"~", body) == _SIGNED.sub(b"~", expected)
    assert b'"version":"1.1.0"' in body


def test_a_repeated_resolve_is_one_round_trip(versions: dict[str, PackVersion]) -> None:
    client = APIClient()
    with CaptureQueriesContext(connection) as first:
        assert client.get(URL, {"spec": "^1.0"}, REMOTE_ADDR="203.0.113.70").status_code == 200
    with CaptureQueriesContext(connection) as again:
        assert client.get(URL, {"spec": "^1.0"}, REMOTE_ADDR="203.0.113.70").status_code == 200
    # The rows (one execute), then the count; the count already made is not sent again.
    assert len(again.captured_queries) == 1, [q["sql"] for q in again.captured_queries]
    # The first: also the version's fixed part (3) and, on a new session, the statements (2).
    assert len(first.captured_queries) <= 7, [q["sql"] for q in first.captured_queries]


def test_a_new_version_is_picked_on_the_next_request(
    versions: dict[str, PackVersion], tmp_path: Path, alice: Any, alice_actor: Actor
) -> None:
    assert _version() == "1.1.0"
    _publish(tmp_path, alice, alice_actor, "1.2.0")
    assert _version() == "1.2.0"


def test_a_yank_and_an_unyank_show_on_the_next_request(
    versions: dict[str, PackVersion], alice: Any
) -> None:
    owner = token_client(alice[0])
    assert _version() == "1.1.0"
    owner.post("/api/v1/packs/acme/docs/versions/1.1.0/yank", {"reason": "x"}, format="json")
    assert _version() == "1.0.0"
    assert APIClient().get(URL, {"spec": "1.1.0"}).json()["yanked"] is True
    owner.post("/api/v1/packs/acme/docs/versions/1.1.0/unyank")
    assert _version() == "1.1.0"


def test_a_deleted_version_is_gone_on_the_next_request(
    versions: dict[str, PackVersion], alice_actor: Actor
) -> None:
    assert _version() == "1.1.0" and _version("1.1.0") == "1.1.0"
    version_delete(actor=alice_actor, version=versions["1.1.0"])
    assert _version() == "1.0.0"
    gone = APIClient().get(URL, {"spec": "1.1.0"})
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "registry.version_deleted"
    version_delete(actor=alice_actor, version=versions["1.0.0"])
    missing = APIClient().get(URL, {"spec": "^1.0"})
    assert missing.json()["error"]["code"] == "registry.no_matching_version"


def test_a_pack_made_private_is_not_found_by_outsiders_on_the_next_request(
    versions: dict[str, PackVersion], alice: Any, alice_actor: Actor
) -> None:
    bob = token_client(user_create(username="bob", password="pw"))
    assert _version() == _version(client=bob) == "1.1.0"
    pack_set_private(actor=alice_actor, pack=versions["1.0.0"].pack, private=True)
    for outsider in (APIClient(), bob):
        answer = outsider.get(URL, {"spec": "^1.0"})
        assert answer.status_code == 404, answer.content
        assert answer.json()["error"]["code"] == "registry.not_found"
    # A member still resolves it; a member's token without the read scope does not.
    assert _version(client=token_client(alice[0])) == "1.1.0"
    assert _version(client=token_client(alice[0], scopes=("publish:acme",))) == "1.1.0"
    assert _version(client=token_client(alice[0], scopes=("tokens:create",))) == 404


def test_a_price_asks_for_an_entitlement_on_the_next_request(
    versions: dict[str, PackVersion], alice: Any
) -> None:
    assert _version() == "1.1.0"
    PackVersion.objects.filter(pk=versions["1.1.0"].pk).update(
        price_amount_minor=900, price_currency="EUR"
    )
    assert _version() == 401
    bob = token_client(user_create(username="bob", password="pw"))
    assert _version(client=bob) == 403
    assert _version(client=token_client(alice[0])) == "1.1.0"  # members need none


def test_a_paid_version_published_later_is_not_served_free(
    versions: dict[str, PackVersion], tmp_path: Path, alice: Any, alice_actor: Actor
) -> None:
    assert _version() == "1.1.0"
    _publish(tmp_path, alice, alice_actor, "1.5.0", price=Price(amount_minor=500, currency="EUR"))
    assert _version() == 401  # the range now picks the paid version


def test_a_new_key_is_listed_on_the_next_request(
    versions: dict[str, PackVersion], alice: Any, alice_actor: Actor
) -> None:
    before = APIClient().get(URL).json()["keys"]
    new = ProtocolSigningKey.generate()
    signing_key_register(
        actor=alice_actor, namespace=alice[1], public_key=new.public_key.to_text(), label="k2"
    )
    after = APIClient().get(URL).json()["keys"]
    assert [k["keyid"] for k in after] == [k["keyid"] for k in before] + [new.keyid]


def test_open_to_all_is_the_download_rule_for_an_actor_without_credentials(
    versions: dict[str, PackVersion], alice: Any
) -> None:
    bob = user_create(username="bob", password="pw")
    actors = [
        ANONYMOUS,
        Actor(user=bob, scopes=frozenset({"read"})),
        Actor(user=bob, scopes=frozenset()),
        Actor(user=alice[0], scopes=None),
    ]
    version = versions["1.0.0"]
    for private in (False, True):
        for price in (0, 700):
            for deleted in (None, timezone.now()):
                version.pack.private = private
                version.pack.save(update_fields=["private"])
                PackVersion.objects.filter(pk=version.pk).update(
                    price_amount_minor=price,
                    price_currency="EUR" if price else "",
                    deleted_at=deleted,
                )
                fresh = PackVersion.objects.select_related("pack").get(pk=version.pk)
                allowed = [
                    selectors.versions_downloadable(actor=a).filter(pk=fresh.pk).exists()
                    for a in actors
                ]
                case = (private, price, deleted)
                assert selectors.open_to_all(fresh) == allowed[0], case
                if selectors.open_to_all(fresh):
                    assert all(allowed), case


def test_one_statement_per_execute_reads_the_same_rows(
    versions: dict[str, PackVersion], monkeypatch: pytest.MonkeyPatch
) -> None:
    def rows() -> Any:
        found = resolve_rows(namespace="acme", name="docs")
        assert found is not None
        return (
            found.pack.pk,
            found.pack.namespace.name,
            sorted((c.version, c.model().pk, c.model().ingest.status) for c in found.candidates),
            [k.keyid for k in found.keys],
        )

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    plain = rows()  # a connection per request: nothing prepared
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    prepared = rows()
    assert prepared == plain
    assert _held() == 3
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    assert rows() == prepared  # not prepared: a pooler in transaction mode
    options = {**connection.settings_dict.get("OPTIONS", {}), "server_side_binding": True}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    assert rows() == prepared  # one statement per execute
    assert len(prepared[2]) == 3
    assert resolve_rows(namespace="acme", name="nope") is None


def _held() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'memstore_%'")
        held: int = cursor.fetchone()[0]
        return held


@pytest.mark.django_db(transaction=True)
def test_statements_dropped_from_the_session_are_prepared_again(
    versions: dict[str, PackVersion], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    assert _version() == "1.1.0"
    assert _held() == 3
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's reset does
    assert _version() == "1.1.0"
    assert _held() == 3
