"""pack_publish: signature checks, immutability, and atomicity against real storage."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from memstore.accounts.actor import Actor
from memstore.accounts.services import signing_key_revoke
from memstore.errors import ConflictError, ForbiddenError, StorageUnavailableError
from memstore.packs.models import Pack, PackVersion, VersionPayload, VersionSignature
from memstore.packs.services import Price, pack_publish, version_delete
from memstore.storage.models import Blob
from memstore.testing.factories import UserFactory
from memstore.testing.packs import build_pack
from protocol import IntegrityError as PackIntegrityError
from protocol import Manifest, SignatureError, SigningKey, write_pack

pytestmark = pytest.mark.django_db


def nothing_published(storage: Any) -> None:
    assert PackVersion.objects.count() == 0
    assert VersionPayload.objects.count() == 0
    assert VersionSignature.objects.count() == 0
    assert Blob.objects.count() == 0
    assert storage.list_keys() == []


def test_publish_stores_version_rows_and_content_addressed_blobs(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    _, _, key = alice
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[key], memories=["one", "two"])
    version = pack_publish(actor=alice_actor, pack_file=pack_file, storage=storage)
    assert version.pack.full_name == "acme/docs"
    assert version.version == "1.0.0"
    assert version.signatures.get().keyid == key.keyid
    assert bytes(version.manifest_bytes) == Manifest.from_dict(version.manifest).canonical_bytes()
    payload = version.payloads.get()
    assert storage.exists(version.file_sha256)
    assert storage.exists(payload.sha256)
    assert Blob.objects.count() == 2
    assert version.ingest.status == "pending"


def test_identical_payloads_of_two_versions_are_stored_once(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    for v in ("1.0.0", "1.1.0"):
        pack_publish(
            actor=alice_actor,
            pack_file=build_pack(
                tmp_path, name="acme/docs", version=v, keys=[key], memories=["same"]
            ),
        )
    assert VersionPayload.objects.count() == 2
    assert len({p.sha256 for p in VersionPayload.objects.all()}) == 1
    assert Blob.objects.count() == 3  # two pack files, one shared payload


def test_unsigned_pack_is_refused_and_leaves_nothing(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[])
    with pytest.raises(SignatureError) as err:
        pack_publish(actor=alice_actor, pack_file=pack_file, storage=storage)
    assert err.value.code == "signature.missing"
    nothing_published(storage)


def test_pack_signed_by_unregistered_key_is_refused(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[SigningKey.generate()])
    with pytest.raises(SignatureError) as err:
        pack_publish(actor=alice_actor, pack_file=pack_file, storage=storage)
    assert err.value.code == "signature.untrusted"
    nothing_published(storage)


def test_pack_signed_by_revoked_key_is_refused(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    _, namespace, key = alice
    signing_key_revoke(actor=alice_actor, namespace=namespace, keyid=key.keyid, reason="leaked")
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[key])
    with pytest.raises(SignatureError) as err:
        pack_publish(actor=alice_actor, pack_file=pack_file, storage=storage)
    assert err.value.code == "signature.revoked_key"
    nothing_published(storage)


def tamper_manifest(pack_file: Path, out: Path) -> Path:
    """Same payloads and signature, but a manifest with another title: the signature breaks."""
    from protocol import read_pack

    work = out.parent / "tamper"
    pack = read_pack(pack_file, target=work)
    changed = Manifest.from_dict({**pack.manifest.to_dict(), "title": "Evil"})
    files = {ref.path: work / ref.path for ref in changed.payloads()}
    write_pack(out, changed, files, pack.signatures)
    return out


def tamper_payload(pack_file: Path, out: Path) -> Path:
    """Flip one byte of the payload, keeping its size: the digest breaks."""
    raw = gzip.decompress(pack_file.read_bytes())
    buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(raw)) as src,
        tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("payloads/"):
                data = data.replace(b"one", b"onE", 1)
            dst.addfile(member, io.BytesIO(data))
    out.write_bytes(gzip.compress(buffer.getvalue()))
    return out


def test_tampered_manifest_is_refused_with_signature_invalid(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    _, _, key = alice
    good = build_pack(tmp_path, name="acme/docs", keys=[key])
    bad = tamper_manifest(good, tmp_path / "bad.memcube")
    with pytest.raises(SignatureError) as err:
        pack_publish(actor=alice_actor, pack_file=bad, storage=storage)
    assert err.value.code == "signature.invalid"
    nothing_published(storage)


def test_tampered_payload_is_refused_with_digest_mismatch(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    _, _, key = alice
    good = build_pack(tmp_path, name="acme/docs", keys=[key], memories=["one"])
    bad = tamper_payload(good, tmp_path / "bad.memcube")
    with pytest.raises(PackIntegrityError) as err:
        pack_publish(actor=alice_actor, pack_file=bad, storage=storage)
    assert err.value.code == "integrity.digest_mismatch"
    nothing_published(storage)


def test_version_is_never_reusable_even_after_deletion(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    version = pack_publish(
        actor=alice_actor, pack_file=build_pack(tmp_path / "a", name="acme/docs", keys=[key])
    )
    version_delete(actor=alice_actor, version=version)
    other = build_pack(tmp_path / "b", name="acme/docs", keys=[key], memories=["different"])
    with pytest.raises(ConflictError) as err:
        pack_publish(actor=alice_actor, pack_file=other)
    assert err.value.code == "registry.version_exists"
    assert PackVersion.objects.count() == 1


def test_non_member_cannot_publish(tmp_path: Path, alice: Any, local_storage: Any) -> None:
    _, _, key = alice
    mallory = Actor(user=UserFactory(username="mallory"), scopes=None)
    with pytest.raises(ForbiddenError):
        pack_publish(actor=mallory, pack_file=build_pack(tmp_path, name="acme/docs", keys=[key]))
    nothing_published(local_storage)


def test_token_without_publish_scope_cannot_publish(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    user, _, key = alice
    read_only = Actor(user=user, scopes=frozenset({"read"}))
    with pytest.raises(ForbiddenError):
        pack_publish(actor=read_only, pack_file=build_pack(tmp_path, name="acme/docs", keys=[key]))


def test_price_and_privacy_are_recorded(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    version = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/paid", keys=[key]),
        private=True,
        price=Price(amount_minor=499, currency="EUR"),
    )
    assert version.is_paid and version.price_currency == "EUR"
    assert Pack.objects.get(name="paid").private


class FailingStorage:
    """The real storage, failing on the n-th put (a storage outage in mid-publish)."""

    def __init__(self, inner: Any, fail_on_put: int) -> None:
        self.inner = inner
        self.puts = 0
        self.fail_on_put = fail_on_put

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_file(self, sha256: str, path: Path) -> None:
        self.puts += 1
        if self.puts == self.fail_on_put:
            raise StorageUnavailableError("injected storage failure")
        self.inner.put_file(sha256, path)


def test_storage_failure_in_mid_publish_leaves_nothing(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    _, _, key = alice
    failing = FailingStorage(storage, fail_on_put=2)  # the pack file is stored, a payload fails
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[key])
    with pytest.raises(StorageUnavailableError):
        pack_publish(actor=alice_actor, pack_file=pack_file, storage=failing)
    assert failing.puts == 2
    nothing_published(storage)


def test_database_failure_in_mid_publish_leaves_nothing(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    """A real PostgreSQL error while the version's rows are inserted (a trigger raises)."""
    _, _, key = alice
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fail_payload() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected database failure'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER fail_payload BEFORE INSERT ON packs_versionpayload "
            "FOR EACH ROW EXECUTE FUNCTION fail_payload()"
        )
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[key])
    with pytest.raises(Exception, match="injected database failure"):
        pack_publish(actor=alice_actor, pack_file=pack_file, storage=storage)
    nothing_published(storage)
    assert Pack.objects.count() == 0
