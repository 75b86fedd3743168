"""Installing through the registry's TUF index: pinning, keys from the delegation, revocations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from protocol import SigningKey
from protocol.errors import MIPError
from runtime.errors import MemosError
from runtime.install import Installer
from runtime.tests.helpers import build_pack
from runtime.trust_index import TrustIndex

from .conftest import REG
from .malicious_registry import TufRegistry


def _pack(tmp: Path, key: SigningKey, version: str = "1.0.0", name: str = "acme/tips") -> Path:
    return build_pack(tmp / version, name=name, version=version, keys=[key],
                      memories=[f"{name} {version}"], mip_version="2.0")  # fmt: skip


def _code(installer: Installer, ref: str = "acme/tips") -> str:
    with pytest.raises((MemosError, MIPError)) as info:
        installer.install(ref, registry=REG)
    return str(getattr(info.value, "code", ""))


def test_install_pins_the_root_and_takes_keys_from_the_index_not_the_answer(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path, home: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    sim.fake.keys.clear()  # the resolve answer names no key at all
    result = installer.install("acme/tips", registry=REG)
    assert result.version == "1.0.0" and result.signed_by == (key.keyid,)
    assert any("pinned" in w for w in result.warnings)
    # 2.root.json and timestamp.json go out together (the fetcher's prefetch): either order
    assert sim.tuf_requests[0] == "1.root.json"
    assert sorted(sim.tuf_requests[1:3]) == ["2.root.json", "timestamp.json"]


def test_a_registry_without_an_index_installs_with_a_signature_only_warning(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    sim.repo.files.clear()  # serves no TUF metadata: a registry from before the index
    result = installer.install("acme/tips", registry=REG)
    assert any("verified by publisher signature only" in w for w in result.warnings)


def test_a_pinned_registry_that_stops_serving_its_index_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    sim.publish(_pack(tmp_path, key, "1.1.0"))
    sim.repo.files.clear()
    assert _code(installer) == "trust.unavailable"
    assert installer.installed_pack("acme/tips").version == "1.0.0"  # type: ignore[union-attr]


def test_a_new_key_endorsed_by_a_pinned_one_is_accepted(
    installer: Installer, sim: TufRegistry, key: SigningKey, evil_key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    installer.install("acme/tips", registry=REG)
    new = SigningKey.from_seed(b"n" * 32)
    sim.add_key("acme", new.public_key, endorsed_by=key)
    sim.publish(_pack(tmp_path, new, "1.1.0"))
    assert installer.install("acme/tips", registry=REG).signed_by == (new.keyid,)


def test_a_version_signed_before_a_plain_revocation_stays_installable(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key), published_at=sim.now - timedelta(days=2))
    sim.set_key("acme", key.keyid, revoked_at=(sim.now - timedelta(days=1)).isoformat())
    assert installer.install("acme/tips", registry=REG).version == "1.0.0"


def test_a_version_signed_after_the_key_was_compromised_is_refused(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key), published_at=sim.now - timedelta(days=1))
    since = (sim.now - timedelta(days=2)).isoformat()
    sim.set_key("acme", key.keyid, revoked_at=sim.now.isoformat(), compromised_since=since)
    assert _code(installer) == "signature.revoked_key"
    assert installer.installed() == []


def test_registry_add_with_a_wrong_fingerprint_is_refused(
    home: Path, sim: TufRegistry
) -> None:
    from runtime.client import RegistryClient

    with RegistryClient(REG, transport=sim.transport()) as client:
        index = TrustIndex(home, REG, client)
        with pytest.raises(MemosError) as info:
            index.pin(index.fetch_first_root() or b"", expected_sha256="0" * 64)
        assert info.value.code == "trust.root_mismatch"
        assert index.pinned() is None


def test_a_locked_install_is_checked_against_the_signed_index(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    """The lock was written while the registry served no index, from an answer that was
    another build of 1.0.0 (signed by the publisher's key); registry and lock agree, but
    the index, once served, lists the real 1.0.0: the locked install is refused."""
    sim.publish(_pack(tmp_path, key))
    other = build_pack(tmp_path / "other", name="acme/tips", version="1.0.0", keys=[key],
                       memories=["another build"], mip_version="2.0")  # fmt: skip
    sim.fake.answers["acme/tips"] = sim.fake.publish(other)
    files = dict(sim.repo.files)
    sim.repo.files.clear()
    lock = tmp_path / "memos.lock"
    installer.install("acme/tips@1.0.0", registry=REG, lockfile=lock)
    sim.repo.files.update(files)  # the index is served (again)
    with pytest.raises(MemosError) as info:
        installer.install_locked(lock, registry=REG)
    assert info.value.code == "trust.target_mismatch"


def test_a_locked_install_of_what_the_index_lists_passes_and_one_without_index_is_noted(
    installer: Installer, sim: TufRegistry, key: SigningKey, tmp_path: Path
) -> None:
    sim.publish(_pack(tmp_path, key))
    lock = tmp_path / "memos.lock"
    installer.install("acme/tips", registry=REG, lockfile=lock)
    before = len(sim.tuf_requests)
    (result,) = installer.install_locked(lock, registry=REG)
    assert result.version == "1.0.0" and "timestamp.json" in sim.tuf_requests[before:]
    sim.repo.files.clear()
    bare = TufRegistry(fake=sim.fake)  # a registry that serves no index, never pinned here
    bare.repo.files.clear()
    other = Installer(tmp_path / "home2", installer.engine, transport=bare.transport())
    (result,) = other.install_locked(lock, registry=REG)
    assert any("verified by publisher signature only" in w for w in result.warnings)
