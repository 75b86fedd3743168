from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import MIPError, SigningKey
from runtime.engine.engine import Engine
from runtime.engine.lifecycle import State
from runtime.errors import InstallError, RegistryError
from runtime.install import Installer
from runtime.lockfile import read_lockfile
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import FixedClock, build_pack

REG = "http://registry.test"


def _publish(
    registry: FakeRegistry, tmp: Path, key: SigningKey, version: str = "1.0.0", **kw: object
) -> Path:
    path = build_pack(tmp, name="acme/tips", version=version, keys=[key], **kw)  # type: ignore[arg-type]
    registry.publish(path)
    return path


def _nothing_installed(installer: Installer) -> None:
    assert installer.installed() == []
    assert installer.engine.store.db.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 0
    assert installer.cache.digests() == []


def test_install_by_name_indexes_memories_and_audits(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(
        registry,
        tmp_path,
        key,
        memories=["Use cargo clippy", {"id": "x", "text": "Prefer iterators", "tags": ["style"]}],
    )
    result = installer.install("acme/tips", registry=REG, actor="alice")
    assert (result.name, result.version, result.memories) == ("acme/tips", "1.0.0", 2)
    assert result.signed_by == (key.keyid,)
    hits = installer.engine.search("iterators")
    assert hits[0].memory.id == "acme/tips/notes/x"
    assert hits[0].memory.tags == ("style",)
    assert hits[0].memory.pack == "acme/tips"
    entry = installer.engine.audit_log(action="install")[-1]
    assert (entry.actor, entry.target, entry.detail["version"]) == ("alice", "acme/tips", "1.0.0")


def test_reinstall_is_a_no_op(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key)
    installer.install("acme/tips", registry=REG)
    again = installer.install("acme/tips", registry=REG)
    assert not again.changed
    assert sum(1 for r in registry.requests if "/blobs/" in r[1]) == 1


def test_upgrade_versions_changed_memories_and_tombstones_dropped(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path, clock: FixedClock
) -> None:
    _publish(registry, tmp_path, key, "1.0.0", memories=["keep me", "change me", "drop me"])
    installer.install("acme/tips@1.0.0", registry=REG)
    clock.advance(days=1)
    _publish(registry, tmp_path, key, "1.1.0", memories=["keep me", "changed!"])
    (result,) = installer.upgrade(registry=REG)
    assert (result.previous_version, result.version) == ("1.0.0", "1.1.0")
    eng = installer.engine
    assert eng.get("acme/tips/notes/m1", record=False).version == 1
    changed = eng.get("acme/tips/notes/m2", record=False)
    assert (changed.text, changed.version) == ("changed!", 2)
    assert eng.get("acme/tips/notes/m3", record=False).state is State.REMOVED
    assert eng.history("acme/tips/notes/m2")[-1].event == "install:1.1.0"
    assert (
        eng.as_of("acme/tips/notes/m2", eng.history("acme/tips/notes/m2")[0].at).text == "change me"
    )


def test_unknown_key_is_refused_before_download(
    installer: Installer, registry: FakeRegistry, other_key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, other_key)
    with pytest.raises(MIPError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "signature.untrusted"
    assert not any("/blobs/" in r[1] for r in registry.requests)
    _nothing_installed(installer)


def test_revoked_key_is_refused(
    installer: Installer, registry: FakeRegistry, other_key: SigningKey, tmp_path: Path
) -> None:
    registry.add_key("acme", other_key.public_key, revoked=True)
    _publish(registry, tmp_path, other_key)
    with pytest.raises(MIPError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "signature.revoked_key"
    _nothing_installed(installer)


def test_unsigned_pack_is_refused(
    installer: Installer, registry: FakeRegistry, tmp_path: Path
) -> None:
    registry.publish(build_pack(tmp_path, name="acme/tips"))
    with pytest.raises(MIPError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "signature.missing"


def test_tampered_blob_is_refused_and_nothing_installed(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key)
    registry.tamper = True
    with pytest.raises(MIPError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "integrity.digest_mismatch"
    _nothing_installed(installer)


def test_pinned_trusted_keys_are_required_when_configured(
    installer: Installer,
    registry: FakeRegistry,
    key: SigningKey,
    other_key: SigningKey,
    tmp_path: Path,
    home: Path,
) -> None:
    _publish(registry, tmp_path, key)
    pins = home / "trusted-keys"
    pins.mkdir(parents=True)
    (pins / "someone-else.pub").write_bytes(other_key.public_key.to_pem())
    with pytest.raises(MIPError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "signature.untrusted"
    (pins / "acme.pub").write_bytes(key.public_key.to_pem())
    assert installer.install("acme/tips", registry=REG).changed


def test_failure_during_commit_leaves_previous_state(
    installer: Installer,
    registry: FakeRegistry,
    key: SigningKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _publish(registry, tmp_path, key, "1.0.0", memories=["one", "two"])
    installer.install("acme/tips@1.0.0", registry=REG)
    before = installer.engine.store.db.execute(
        "SELECT id, text, version, state FROM memories ORDER BY id"
    ).fetchall()
    _publish(registry, tmp_path, key, "2.0.0", memories=["uno", "dos", "tres"])
    store = installer.engine.store
    real_update = store.update
    calls = []

    def failing_update(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real_update(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "update", failing_update)
    with pytest.raises(OSError, match="disk full"):
        installer.install("acme/tips", registry=REG)
    monkeypatch.undo()
    after = store.db.execute("SELECT id, text, version, state FROM memories ORDER BY id").fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert installer.installed_pack("acme/tips").version == "1.0.0"  # type: ignore[union-attr]
    assert installer.install("acme/tips", registry=REG).version == "2.0.0"


def test_lockfile_records_and_reproduces(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "1.0.0")
    _publish(registry, tmp_path, key, "1.1.0")
    lock = tmp_path / "memos.lock"
    installer.install("acme/tips@~1.0", registry=REG, lockfile=lock)
    entry = read_lockfile(lock)["acme/tips"]
    assert entry.version == "1.0.0"
    assert entry.keys == (key.public_key.to_text(),)
    installer.remove("acme/tips")
    (result,) = installer.install_locked(lock, registry=REG)
    assert (result.version, result.sha256) == ("1.0.0", entry.sha256)


def test_locked_install_refuses_different_bytes(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "1.0.0")
    lock = tmp_path / "memos.lock"
    installer.install("acme/tips", registry=REG, lockfile=lock)
    installer.remove("acme/tips")
    data = json.loads(lock.read_text())
    data["packs"]["acme/tips"]["sha256"] = "0" * 64
    lock.write_text(json.dumps(data))
    with pytest.raises(InstallError) as info:
        installer.install_locked(lock, registry=REG)
    assert info.value.code == "install.lock_mismatch"


def test_locked_install_refuses_key_revoked_since(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "1.0.0")
    lock = tmp_path / "memos.lock"
    installer.install("acme/tips", registry=REG, lockfile=lock)
    installer.remove("acme/tips")
    registry.keys["acme"][0]["revoked_at"] = "2026-02-01T00:00:00Z"
    with pytest.raises(MIPError) as info:
        installer.install_locked(lock, registry=REG)
    assert info.value.code == "signature.revoked_key"


def test_install_local_file_needs_trusted_key(
    installer: Installer, key: SigningKey, other_key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/local", keys=[key], memories=["local fact"])
    with pytest.raises(InstallError) as info:
        installer.install_file(path)
    assert info.value.code == "install.no_trusted_keys"
    with pytest.raises(MIPError):
        installer.install_file(path, trusted_keys=[other_key.public_key])
    _nothing_installed(installer)
    result = installer.install_file(path, trusted_keys=[key.public_key])
    assert result.source == "file"
    assert installer.engine.search("local fact")[0].memory.id == "acme/local/notes/m1"


def test_remove_tombstones_and_frees_blobs(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key)
    installer.install("acme/tips", registry=REG)
    assert installer.cache.digests()
    assert installer.remove("acme/tips") == 1
    assert installer.installed() == []
    assert installer.cache.digests() == []
    assert installer.engine.history("acme/tips/notes/m1")[-1].event == "uninstall"
    assert installer.engine.search("first memory") == []
    with pytest.raises(InstallError):
        installer.remove("acme/tips")


def test_versions_share_payload_blobs(
    installer: Installer, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    _publish(registry, tmp_path, key, "1.0.0", memories=["same"])
    _publish(registry, tmp_path, key, "1.0.1", memories=["same"])
    installer.install("acme/tips@1.0.0", registry=REG)
    installer.install("acme/tips@1.0.1", registry=REG)
    # two pack files, one shared payload blob
    assert len(installer.cache.digests()) == 3


def test_registry_errors_surface_with_codes(installer: Installer) -> None:
    with pytest.raises(RegistryError) as info:
        installer.install("acme/none", registry=REG)
    assert info.value.code == "registry.not_found"


def test_pack_access_policy_and_ttl_apply(
    installer: Installer,
    registry: FakeRegistry,
    key: SigningKey,
    tmp_path: Path,
    engine: Engine,
    clock: FixedClock,
) -> None:
    _publish(
        registry,
        tmp_path,
        key,
        access={"visibility": "restricted", "principals": ["agent-1"]},
        ttl_seconds=3600,
        memories=["restricted fact"],
    )
    installer.install("acme/tips", registry=REG)
    assert engine.search("restricted fact", principal="agent-2") == []
    assert engine.search("restricted fact", principal="agent-1")
    clock.advance(hours=2)
    assert engine.maintain().expired == ["acme/tips/notes/m1"]


def test_locked_file_install_is_reproduced_from_the_cache(
    installer: Installer, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/local", keys=[key], memories=["local fact"])
    lock = tmp_path / "memos.lock"
    installer.install_file(path, trusted_keys=[key.public_key], lockfile=lock)
    assert installer.manifest("acme/local").cubes[0].id == "notes"
    installer.engine.store.db.execute("DELETE FROM packs")  # simulate a fresh engine, same cache
    (result,) = installer.install_locked(lock, registry=REG)
    assert result.name == "acme/local"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_lockfile_reader_refuses_garbage_cleanly(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("lock") / "memos.lock"
    path.write_bytes(data)
    with pytest.raises(InstallError) as info:
        read_lockfile(path)
    assert info.value.code == "install.bad_lockfile"
