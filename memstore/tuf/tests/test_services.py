"""The registry's TUF repository: synced after publish and yank, served, key statements checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from memstore.accounts.actor import Actor
from memstore.errors import InvalidRequestError
from memstore.packs.services import pack_publish, version_yank
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from memstore.tuf.selectors import latest_files
from memstore.tuf.services import key_endorse
from protocol import SigningKey
from protocol.endorsement import endorse_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tuf_dir(tmp_path: Path, settings: Any) -> None:
    settings.MEMSTORE_TUF_KEY_DIR = tmp_path / "tuf"


def _role(name: str) -> dict[str, Any]:
    return json.loads(latest_files()[f"{name}.json"])["signed"]  # type: ignore[no-any-return]


def test_publish_and_yank_are_signed_into_the_namespace_role(
    tmp_path: Path, local_storage: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user, _ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    with django_capture_on_commit_callbacks(execute=True):
        version = pack_publish(actor=actor, pack_file=build_pack(tmp_path, name="acme/tips",
                                                                 keys=[key]))  # fmt: skip
    target = _role("ns-acme")["targets"]["acme/tips/1.0.0/manifest.json"]
    assert target["hashes"]["sha256"] == version.manifest_sha256
    assert target["custom"]["yanked"] is False
    delegation = _role("targets")["delegations"]["roles"][0]
    assert delegation["paths"] == ["acme/*/*/manifest.json"]
    assert [k["keyid"] for k in delegation["x-memstore-publisher-keys"]] == [key.keyid]
    with django_capture_on_commit_callbacks(execute=True):
        version_yank(actor=actor, version=version, reason="bad tip")
    target = _role("ns-acme")["targets"]["acme/tips/1.0.0/manifest.json"]
    assert target["custom"]["yanked"] is True

    client = Client()
    assert client.get("/api/v1/tuf/1.root.json").status_code == 200
    assert client.get("/api/v1/tuf/timestamp.json")["Cache-Control"] == "no-cache"
    missing = client.get("/api/v1/tuf/99.targets.json")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "tuf.not_found"


def test_an_endorsement_that_does_not_verify_is_refused(local_storage: Any) -> None:
    from memstore.accounts.services import signing_key_register

    user, ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    new = SigningKey.generate()
    signing_key_register(actor=actor, namespace=ns, public_key=new.public_key.to_text())
    forged = endorse_key("other-namespace", new.public_key, key)
    with pytest.raises(InvalidRequestError) as info:
        key_endorse(actor=actor, namespace=ns, keyid=new.keyid, signature=forged)
    assert info.value.code == "tuf.bad_endorsement"


def test_the_root_names_the_transparency_log_s_key_signed_by_the_root_keys() -> None:
    """Clients take the log's tree-head key from the pinned root (SPEC 16.2), so the root,
    signed by the offline keys, names it; a root rotation names the log's current key."""
    from tuf.api.metadata import Metadata, Root

    from memstore.tuf.keys import DEMO_ROOT, key_dir, load_signer
    from memstore.tuf.repository import LOG_KEYS
    from memstore.tuf.services import ensure_repository, root_rotate

    assert ensure_repository()
    named = [Client().get("/api/v1/log/tree-head").json()["public_key"]]
    root = Metadata[Root].from_bytes(latest_files()["root.json"])
    assert root.signed.unrecognized_fields[LOG_KEYS] == named
    root.signed.verify_delegate(Root.type, root.signed_bytes, root.signatures)
    demo = load_signer(key_dir() / DEMO_ROOT)
    assert root_rotate(old_signers=[demo], new_signers=[demo], threshold=1) == 2
    assert json.loads(latest_files()["root.json"])["signed"][LOG_KEYS] == named


def test_an_install_s_metadata_reads_have_their_own_rate_not_the_anonymous_api_s(
    tmp_path: Path, local_storage: Any, settings: Any
) -> None:
    """One address installing a dozen packs (~10 signed reads each) is not throttled."""
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    user, _ns, key = publisher("acme", "alice")
    pack_publish(actor=Actor(user=user, scopes=None),
                 pack_file=build_pack(tmp_path, name="acme/tips", keys=[key]))  # fmt: skip
    rates = dict(SimpleRateThrottle.THROTTLE_RATES)
    assert rates["metadata"] == "1200/min"  # the default (MEMSTORE_THROTTLE_METADATA)
    anon = int(rates["anon"].split("/")[0])
    cache.clear()
    client = Client()
    codes = {client.get("/api/v1/tuf/timestamp.json").status_code for _ in range(anon + 5)}
    codes |= {client.get("/api/v1/log/tree-head").status_code for _ in range(5)}
    assert codes == {200}
    # ...while the anonymous API rate still applies to the rest of the API.
    cache.clear()
    codes = {client.get("/api/v1/packs/").status_code for _ in range(anon + 1)}
    assert 429 in codes
    cache.clear()
