"""Resolve's pre-rendered answer (issue 17): ResolveOut's shape, few queries, nothing stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.accounts.serializers import KeyOut
from memstore.accounts.services import signing_key_revoke
from memstore.packs.models import PackVersion
from memstore.packs.serializers import BlobOut, PayloadOut, ResolveOut, SignatureOut
from memstore.packs.services import pack_deprecate, pack_publish, version_yank
from memstore.testing.packs import build_pack

pytestmark = pytest.mark.django_db

URL = "/api/v1/resolve/acme/docs"


@pytest.fixture
def versions(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> dict[str, PackVersion]:
    out = {}
    for v in ("1.0.0", "1.1.0", "1.2.0", "2.0.0"):
        pack_file = build_pack(
            tmp_path, name="acme/docs", version=v, keys=[alice[2]], memories=[f"memory of {v}"]
        )
        out[v] = pack_publish(actor=alice_actor, pack_file=pack_file)
    return out


def test_the_answer_has_resolve_outs_fields_unchanged_by_it(
    versions: dict[str, PackVersion],
) -> None:
    body = APIClient().get(URL, {"spec": "^1.0"}).json()
    assert body["version"] == "1.2.0"
    assert set(body) == set(ResolveOut().fields)
    for field, shape in (
        ("signatures", SignatureOut),
        ("keys", KeyOut),
        ("payloads", PayloadOut),
        ("blobs", BlobOut),
    ):
        assert body[field], field
        assert all(set(item) == set(shape().fields) for item in body[field]), field
    # What the output serializer would make of the answer is the answer itself.
    assert json.loads(JSONRenderer().render(ResolveOut(body).data)) == body
    assert body["manifest"]["version"] == "1.2.0"
    assert body["published_at"].endswith("Z")  # DRF's format for UTC, as before


def test_a_resolve_makes_a_bounded_number_of_queries(versions: dict[str, PackVersion]) -> None:
    client = APIClient()
    with CaptureQueriesContext(connection) as first:
        assert client.get(URL, {"spec": "^1.0"}).status_code == 200
    with CaptureQueriesContext(connection) as again:
        assert client.get(URL, {"spec": "^1.0"}).status_code == 200
    # pack, versions (+ ingest), the download rule, the count, the keys; the first time a
    # version is resolved in a process, its manifest, payloads and signatures as well.
    assert len(again.captured_queries) <= 5, [q["sql"] for q in again.captured_queries]
    assert len(first.captured_queries) <= 8, [q["sql"] for q in first.captured_queries]


def test_yank_deprecation_and_key_revocation_show_on_the_next_request(
    versions: dict[str, PackVersion], alice: Any, alice_actor: Actor
) -> None:
    client = APIClient()
    before = client.get(URL, {"spec": "1.2.0"}).json()
    assert not before["yanked"] and not before["deprecated"]
    assert all(k["revoked_at"] is None for k in before["keys"])
    version_yank(actor=alice_actor, version=versions["1.2.0"], reason="broken")
    pack_deprecate(actor=alice_actor, pack=versions["1.2.0"].pack, deprecated=True, message="old")
    signing_key_revoke(actor=alice_actor, namespace=alice[1], keyid=alice[2].keyid, reason="lost")
    after = client.get(URL, {"spec": "1.2.0"}).json()
    assert (after["yanked"], after["yanked_reason"]) == (True, "broken")
    assert (after["deprecated"], after["deprecation_message"]) == (True, "old")
    assert [k["revocation_reason"] for k in after["keys"]] == ["lost"]
    assert after["keys"][0]["revoked_at"] is not None
    assert after["manifest_b64"] == before["manifest_b64"]
    # A range no longer picks the yanked version.
    assert client.get(URL, {"spec": "^1.0"}).json()["version"] == "1.1.0"
