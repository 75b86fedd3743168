"""Installs blob by blob: partial fetch by model, delta upgrades, self-healing cache, verify."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from protocol import IntegrityError, ModelFingerprint, SigningKey, read_pack
from runtime.cache import BlobCache
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.engine.scheduler import MemScheduler
from runtime.errors import CacheError
from runtime.install import Installer
from runtime.lockfile import LockEntry, read_lockfile
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import (
    FixedClock,
    build_pack,
    fingerprint_digest_of,
    kv_cube,
    lora_cube,
    plain_cube,
    tiny_fingerprint,
)

REG = "http://registry.test"
MODELS = ("a" * 64, "c" * 64, "d" * 64)


@pytest.fixture
def blob_registry(registry: FakeRegistry) -> FakeRegistry:
    registry.blob_urls = True
    return registry


def _installer(home: Path, engine: Engine, registry: FakeRegistry, model: str | None) -> Installer:
    fp = fingerprint_digest_of(tiny_fingerprint(model)) if model else None
    return Installer(home, engine, transport=registry.as_transport(), model_fingerprint=fp)


def _digests(path: Path) -> dict[str, str]:
    """cube id -> the sha256 of its (first) payload."""
    pack = read_pack(path)
    return {c.id: c.payloads[0].sha256 for c in pack.manifest.cubes}


def _kv_pack(tmp: Path, key: SigningKey, version: str = "1.0.0", **kw: object) -> Path:
    cubes = [kv_cube(f"kv{i}", config_sha256=m, seed=i) for i, m in enumerate(MODELS)]
    return build_pack(tmp, name="acme/kv", version=version, keys=[key], memories=["a fact"],
                      extra_cubes=cubes, **kw)  # type: ignore[arg-type]  # fmt: skip


def _whole_pack_requests(registry: FakeRegistry) -> list[str]:
    return [p for _, p, _ in registry.requests if "/blobs/" in p and "/blobs/sha256/" not in p]


def test_partial_fetch_by_model_fetches_only_the_matching_kv_cache(
    home: Path, engine: Engine, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    path = _kv_pack(tmp_path, key)
    blob_registry.publish(path)
    digests = _digests(path)
    sizes = {b["sha256"]: b["size"] for b in blob_registry.packs["acme/kv"][0].blobs}
    installer = _installer(home, engine, blob_registry, MODELS[1])

    progress: list[tuple[int, int]] = []
    result = installer.install(
        "acme/kv", registry=REG, progress=lambda d, t: progress.append((d, t))
    )

    wanted = {digests["notes"], digests["kv1"]}
    assert set(blob_registry.blob_bytes) == wanted
    assert sum(blob_registry.blob_bytes.values()) == sum(sizes[d] for d in wanted)
    assert _whole_pack_requests(blob_registry) == []  # the .memcube file is never fetched
    assert set(result.blobs) == set(result.fetched) == wanted
    assert progress[-1] == (sum(sizes[d] for d in wanted),) * 2
    assert set(installer.cache.digests()) == wanted
    assert result.memories == 4  # one memory + three KV cubes (two not fetched, still listed)

    # --all later fetches the other two and nothing again.
    blob_registry.blob_bytes.clear()
    again = installer.install("acme/kv", registry=REG, everything=True)
    assert set(blob_registry.blob_bytes) == {digests["kv0"], digests["kv2"]}
    assert not again.changed and set(again.fetched) == {digests["kv0"], digests["kv2"]}


def test_the_plan_refuses_a_kv_cache_that_was_not_fetched(
    home: Path, engine: Engine, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    blob_registry.publish(_kv_pack(tmp_path, key))
    _installer(home, engine, blob_registry, MODELS[1]).install("acme/kv", registry=REG)
    fp = ModelFingerprint.from_dict(tiny_fingerprint(MODELS[0]))
    plan = MemScheduler(engine).plan("KV cache", 10_000, None, fp)
    codes = {r.memory_id: r.code for r in plan.rejected}
    assert codes["acme/kv/kv0"] == "plan.blob_missing"


def test_delta_upgrade_downloads_only_the_changed_memory_file(
    home: Path, engine: Engine, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    def publish(version: str, changed: str) -> Path:
        path = build_pack(
            tmp_path, name="acme/tips", version=version, keys=[key],
            memories=["stable one", changed],
            extra_cubes=[plain_cube("more", ["other fact"]), lora_cube(floats=20_000)],
        )  # fmt: skip
        blob_registry.publish(path)
        return path

    v1 = _digests(publish("1.0.0", "old wording"))
    installer = _installer(home, engine, blob_registry, None)
    installer.install("acme/tips@1.0.0", registry=REG)
    v2 = _digests(publish("1.1.0", "new wording"))
    assert v1["notes"] != v2["notes"] and v1["more"] == v2["more"]

    blob_registry.blob_bytes.clear()
    blob_registry.requests.clear()
    (result,) = installer.upgrade(["acme/tips"], registry=REG)
    assert (result.version, result.previous_version) == ("1.1.0", "1.0.0")
    assert list(blob_registry.blob_bytes) == [v2["notes"]]
    blob_gets = [p for _, p, _ in blob_registry.requests if "/blobs/" in p]
    assert blob_gets == [f"/api/v1/blobs/sha256/{v2['notes']}"]
    assert result.fetched == (v2["notes"],)
    assert engine.get("acme/tips/notes/m2").text == "new wording"


class _CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> Any:
        self.texts.extend(texts)
        return super().embed(texts)


def test_an_upgrade_embeds_only_the_memories_whose_text_changed(
    home: Path, clock: FixedClock, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    embedder = _CountingEmbedder()
    engine = Engine(home, embedder=embedder, clock=clock, maintain_every=None)
    try:
        for version, text in (("1.0.0", "old wording"), ("1.1.0", "new wording")):
            pack = build_pack(
                tmp_path, name="acme/tips", version=version, keys=[key],
                memories=["stable one", text, "stable two"],
            )  # fmt: skip
            blob_registry.publish(pack)
        installer = _installer(home, engine, blob_registry, None)
        installer.install("acme/tips@1.0.0", registry=REG)
        assert len(embedder.texts) == 3
        embedder.texts.clear()
        rows_before = engine.vectors.count()
        installer.upgrade(["acme/tips"], registry=REG)
        assert embedder.texts == ["new wording"]
        assert engine.vectors.count() == rows_before + 1  # no vector written twice
        hits = engine.search("stable one", record=False)
        assert hits and hits[0].memory.text == "stable one"
        assert engine.get("acme/tips/notes/m2").text == "new wording"
    finally:
        engine.close()


def test_a_blob_tampered_in_the_cache_is_named_and_healed_by_installing_again(
    home: Path, engine: Engine, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/tips", keys=[key], memories=["x"],
                      extra_cubes=[lora_cube()])  # fmt: skip
    blob_registry.publish(path)
    installer = _installer(home, engine, blob_registry, None)
    installer.install("acme/tips", registry=REG)
    assert installer.verify_installed() == []
    weights = read_pack(path).manifest.cube("adapter").payloads[1].sha256
    blob = installer.cache.blob_path(weights)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))

    ((pack, problem),) = installer.verify_installed(["acme/tips"])
    assert (pack, problem.sha256, problem.code) == ("acme/tips", weights, "cache.blob_corrupt")
    with pytest.raises(CacheError) as info:
        installer.cache.checked_path(weights)
    assert info.value.code == "cache.blob_corrupt"

    blob_registry.blob_bytes.clear()
    result = installer.install("acme/tips", registry=REG)
    assert not result.changed and result.fetched == (weights,)
    assert list(blob_registry.blob_bytes) == [weights]
    assert installer.verify_installed() == []
    assert installer.cache.checked_path(weights) == blob


def test_installing_a_good_file_again_replaces_a_bad_blob(
    installer: Installer, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/local", keys=[key], memories=["local fact"])
    installer.install_file(path, trusted_keys=[key.public_key])
    (digest,) = {r.sha256 for c in read_pack(path).manifest.cubes for r in c.payloads}
    installer.cache.blob_path(digest).write_bytes(b"garbage")
    assert [p.sha256 for _, p in installer.verify_installed()] == [digest]
    installer.install_file(path, trusted_keys=[key.public_key])
    assert installer.verify_installed() == []


def test_a_file_install_keeps_no_copy_of_the_pack_file(
    installer: Installer, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/local", keys=[key], memories=["local fact"],
                      extra_cubes=[lora_cube()])  # fmt: skip
    result = installer.install_file(path, trusted_keys=[key.public_key])
    cached = set(installer.cache.digests())
    assert result.sha256 not in cached  # the .memcube is read, its blobs moved in
    assert set(result.blobs) <= cached
    assert list((installer.cache.root / "tmp").iterdir()) == []


def test_registry_blob_with_wrong_digest_is_refused_and_nothing_kept(
    installer: Installer, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/tips", keys=[key], memories=["x"])
    blob_registry.publish(path)
    blob_registry.tamper_blobs = set(_digests(path).values())
    with pytest.raises(IntegrityError) as info:
        installer.install("acme/tips", registry=REG)
    assert info.value.code == "integrity.digest_mismatch"
    assert installer.installed() == []
    assert installer.cache.digests() == []
    assert list((installer.cache.root / "partial").iterdir()) == []


def test_untrusted_manifest_fetches_no_blob(
    installer: Installer, blob_registry: FakeRegistry, other_key: SigningKey, tmp_path: Path
) -> None:
    blob_registry.publish(build_pack(tmp_path, name="acme/tips", keys=[other_key]))
    with pytest.raises(Exception) as info:
        installer.install("acme/tips", registry=REG)
    assert getattr(info.value, "code", "").startswith("signature.")
    assert blob_registry.blob_bytes == {}


def test_lockfile_records_blobs_and_old_lockfiles_still_read(
    installer: Installer, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/tips", keys=[key], memories=["x"])
    blob_registry.publish(path)
    lock = tmp_path / "memos.lock"
    installer.install("acme/tips", registry=REG, lockfile=lock)
    entry = read_lockfile(lock)["acme/tips"]
    assert entry.blobs == tuple(sorted(_digests(path).values()))
    old = json.loads(lock.read_text())
    for fields in old["packs"].values():
        fields.pop("blobs")
    lock.write_text(json.dumps(old))
    assert read_lockfile(lock)["acme/tips"].blobs == ()
    assert installer.install_locked(lock, registry=REG)[0].name == "acme/tips"


def test_locked_file_install_is_reproduced_from_cached_blobs(
    installer: Installer, key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/local", keys=[key], memories=["local fact"])
    lock = tmp_path / "memos.lock"
    installer.install_file(path, trusted_keys=[key.public_key], lockfile=lock)
    entry = read_lockfile(lock)["acme/local"]
    assert isinstance(entry, LockEntry) and entry.signatures and entry.blobs
    path.unlink()  # the file is gone: the cache holds its manifest and blobs
    installer.engine.store.db.execute("DELETE FROM packs")
    (result,) = installer.install_locked(lock, registry=REG)
    assert (result.name, result.sha256) == ("acme/local", entry.sha256)


def test_cache_checked_path_rehashes_once_per_process(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    sha, blob = cache.add_bytes(b"hello blob")
    assert cache.checked_path(sha) == blob
    assert cache.is_intact(sha, 10)
    blob.write_bytes(b"hello blub")  # same size, new mtime: the stamp no longer matches
    with pytest.raises(CacheError):
        cache.checked_path(sha)
    assert not cache.is_intact(sha, 10)  # a bad blob is deleted so it is fetched again
    assert not cache.has(sha)


def test_a_mip2_file_streams_only_the_wanted_blobs_into_the_cache(
    home: Path, engine: Engine, key: SigningKey, tmp_path: Path, registry: FakeRegistry
) -> None:
    path = _kv_pack(tmp_path, key, mip_version="2.0")
    assert path.read_bytes()[:2] != b"\x1f\x8b"  # a plain tar: MIP 2
    digests = _digests(path)
    installer = _installer(home, engine, registry, MODELS[2])
    result = installer.install_file(path, trusted_keys=[key.public_key])
    wanted = {digests["notes"], digests["kv2"]}
    assert set(result.blobs) == set(result.fetched) == wanted
    assert set(installer.cache.digests()) == wanted | {engine.store.pack_manifest_sha256("acme/kv")}
    assert list((installer.cache.root / "tmp").iterdir()) == []
    assert installer.verify_installed() == []


def test_a_mip2_file_and_the_registry_give_the_same_installed_state(
    tmp_path: Path, key: SigningKey, blob_registry: FakeRegistry
) -> None:
    from runtime.engine.embedding import HashEmbedder

    path = _kv_pack(tmp_path, key, mip_version="2.0")
    blob_registry.publish(path)
    states = []
    for where in ("file", "registry"):
        home = tmp_path / f"home-{where}"
        eng = Engine(home, embedder=HashEmbedder(), maintain_every=None)
        try:
            inst = _installer(home, eng, blob_registry, MODELS[0])
            if where == "file":
                inst.install_file(path, trusted_keys=[key.public_key])
            else:
                inst.install("acme/kv", registry=REG)
            rows = [(m.id, m.text, m.memory_type, dict(m.payloads))
                    for _, m, _ in eng.store.pack_rows("acme/kv")]  # fmt: skip
            blobs = set(inst.cache.digests()) - {eng.store.pack_manifest_sha256("acme/kv")}
            states.append((rows, blobs, inst.installed()[0].version))
        finally:
            eng.close()
    assert states[0] == states[1]


def test_a_refused_mip2_file_leaves_nothing_in_the_cache(
    installer: Installer, key: SigningKey, other_key: SigningKey, tmp_path: Path
) -> None:
    path = build_pack(tmp_path, name="acme/tips", keys=[key], memories=["x"],
                      extra_cubes=[lora_cube()], mip_version="2.0")  # fmt: skip
    with pytest.raises(Exception) as info:
        installer.install_file(path, trusted_keys=[other_key.public_key])
    assert getattr(info.value, "code", "").startswith("signature.")
    assert installer.cache.digests() == []
    assert installer.installed() == []


class _ReadCountingInstaller(Installer):
    """Records which cached blobs the installer opens to read memories from."""

    read: list[str]

    def _cached(self, sha256: str) -> Path | None:
        self.read.append(sha256)
        return super()._cached(sha256)


def test_an_upgrade_carries_an_unchanged_memory_file_without_reading_it(
    home: Path, engine: Engine, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    def publish(version: str, changed: str) -> dict[str, str]:
        path = build_pack(
            tmp_path, name="acme/tips", version=version, keys=[key], memories=[changed],
            extra_cubes=[plain_cube("more", ["kept fact", "second kept fact"])],
        )  # fmt: skip
        blob_registry.publish(path)
        return _digests(path)

    v1 = publish("1.0.0", "old wording")
    fp = None
    installer = _ReadCountingInstaller(home, engine, transport=blob_registry.as_transport(),
                                       model_fingerprint=fp)  # fmt: skip
    installer.read = []
    installer.install("acme/tips@1.0.0", registry=REG)
    v2 = publish("1.1.0", "new wording")
    assert v1["more"] == v2["more"]

    installer.read.clear()
    (result,) = installer.upgrade(["acme/tips"], registry=REG)
    assert v2["more"] not in installer.read and v2["notes"] in installer.read
    assert result.memories == 3
    kept = engine.get("acme/tips/more/more1", record=False)
    assert (kept.text, kept.version, kept.pack_version) == ("kept fact", 1, "1.1.0")
    assert len(engine.history("acme/tips/more/more1")) == 1  # moved, not versioned
    assert engine.get("acme/tips/notes/m1", record=False).text == "new wording"
    hits = engine.search("second kept fact", record=False)
    assert hits and hits[0].memory.id == "acme/tips/more/more2"  # its vector still serves


def test_an_upgrade_rereads_an_unchanged_file_whose_memory_was_removed(
    home: Path, engine: Engine, blob_registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    for version in ("1.0.0", "1.1.0"):
        path = build_pack(
            tmp_path, name="acme/tips", version=version, keys=[key], memories=[version],
            extra_cubes=[plain_cube("more", ["kept fact"])],
        )  # fmt: skip
        blob_registry.publish(path)
    installer = _installer(home, engine, blob_registry, None)
    installer.install("acme/tips@1.0.0", registry=REG)
    engine.transition("acme/tips/more/more1", "remove")
    (result,) = installer.upgrade(["acme/tips"], registry=REG)
    assert result.memories == 2  # an upgrade restores a removed memory, as before
    restored = engine.get("acme/tips/more/more1", record=False)
    assert (restored.state.value, restored.pack_version) != ("removed", "1.0.0")
    assert restored.pack_version == "1.1.0" and restored.state.value != "removed"
