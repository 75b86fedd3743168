"""The installer's pure trust step: which keys decide, and the codes it refuses with."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import MIPError, SigningKey, parse_ref, read_pack
from runtime._wire import Resolution
from runtime.client import RegistryClient
from runtime.errors import InstallError
from runtime.install.trust import check_pack, manifest_sha256, trust_locked, trust_resolution
from runtime.lockfile import LockEntry
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack

REG = "http://registry.test"


def _resolve(registry: FakeRegistry, tmp: Path, *keys: SigningKey) -> Resolution:
    registry.publish(build_pack(tmp, name="acme/tips", keys=list(keys)))
    with RegistryClient(REG, transport=registry.as_transport()) as client:
        return client.resolve(parse_ref("acme/tips"))


def _entry(res: Resolution, *keys: SigningKey) -> LockEntry:
    return LockEntry(
        res.name,
        res.version,
        res.pack.sha256,
        res.pack.size,
        manifest_sha256(res.manifest_bytes),
        tuple(k.keyid for k in keys),
        tuple(k.public_key.to_text() for k in keys),
        REG,
    )


def test_namespace_key_in_force_is_trusted_and_revoked_one_is_known(
    registry: FakeRegistry, key: SigningKey, other_key: SigningKey, tmp_path: Path
) -> None:
    registry.add_key("acme", other_key.public_key, revoked=True)
    res = _resolve(registry, tmp_path, key)
    keys = trust_resolution(res, pins=())
    assert [k.keyid for k in keys.in_force()] == [key.keyid]
    assert other_key.keyid in keys  # known, as revoked


def test_pack_signed_only_by_a_revoked_namespace_key_is_refused_as_revoked(
    registry: FakeRegistry, other_key: SigningKey, tmp_path: Path
) -> None:
    registry.add_key("acme", other_key.public_key, revoked=True)
    res = _resolve(registry, tmp_path, other_key)
    with pytest.raises(MIPError) as info:
        trust_resolution(res, pins=())
    assert info.value.code == "signature.revoked_key"


def test_pins_must_accept_the_signatures_too(
    registry: FakeRegistry, key: SigningKey, other_key: SigningKey, tmp_path: Path
) -> None:
    res = _resolve(registry, tmp_path, key)
    with pytest.raises(MIPError) as info:
        trust_resolution(res, pins=[other_key.public_key])
    assert info.value.code == "signature.untrusted"
    assert trust_resolution(res, pins=[key.public_key]).in_force()


def test_locked_keys_revoked_since_refuse_even_when_not_pinned(
    registry: FakeRegistry, key: SigningKey, other_key: SigningKey, tmp_path: Path
) -> None:
    registry.add_key("acme", other_key.public_key, revoked=True)
    res = _resolve(registry, tmp_path, other_key)
    pinned = [key.public_key]  # the lock pins another key; the signer is revoked
    with pytest.raises(MIPError) as info:
        trust_locked(res, _entry(res, key), pinned)
    assert info.value.code == "signature.revoked_key"


def test_locked_install_refuses_other_bytes_before_any_signature(
    registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    res = _resolve(registry, tmp_path, key)
    entry = _entry(res, key)
    moved = LockEntry(**{**entry.__dict__, "sha256": "0" * 64})
    with pytest.raises(InstallError) as info:
        trust_locked(res, moved, [key.public_key])
    assert info.value.code == "install.lock_mismatch"
    assert trust_locked(res, entry, [key.public_key]).in_force() == (key.public_key,)


def test_downloaded_manifest_must_be_the_trusted_one(
    registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    res = _resolve(registry, tmp_path, key)
    keys = trust_resolution(res, pins=())
    other = build_pack(tmp_path / "other", name="acme/tips", version="2.0.0", keys=[key])
    pack = read_pack(other, target=tmp_path / "staged")
    with pytest.raises(InstallError) as info:
        check_pack(pack, keys, expected_manifest=res.manifest_bytes)
    assert info.value.code == "install.manifest_mismatch"
    assert check_pack(pack, keys, expected_manifest=None).valid == (key.keyid,)
