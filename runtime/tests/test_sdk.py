"""MemOS over an in-memory registry: ``transport=`` reaches the registry client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from protocol import SigningKey
from runtime import MemOS
from runtime.engine.embedding import HashEmbedder
from runtime.errors import RegistryError
from runtime.lockfile import read_lockfile
from runtime.sdk import is_pack_file
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack

REG = "http://registry.test"


def _memos(
    home: Path, transport: httpx.BaseTransport, on_stage: Callable[[str], None] | None = None
) -> MemOS:
    return MemOS(home, principal="agent-1", embedder=HashEmbedder(), registry=REG,
                 transport=transport, on_stage=on_stage, maintain_every=None)


def test_memos_installs_through_an_injected_transport(
    home: Path, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    registry.publish(build_pack(tmp_path, name="acme/tips", keys=[key], memories=["use clippy"]))
    stages: list[str] = []
    lock = tmp_path / "memos.lock"
    with _memos(home, registry.as_transport(), on_stage=stages.append) as mem:
        result = mem.install("acme/tips@^1", lockfile=lock)
        assert (result.name, result.version, result.memories) == ("acme/tips", "1.0.0", 1)
        assert [p.name for p in mem.installed()] == ["acme/tips"]
        assert mem.search("clippy")[0].memory.pack == "acme/tips"
        assert mem.audit(action="install")[-1].actor == "agent-1"
        assert mem.verify_audit() is None
    assert stages and any("verifying" in s for s in stages)
    paths = [path for _, path, _ in registry.requests]
    # The trust probes find no TUF index and no transparency log on this test registry.
    probes = [p for p in paths if p.startswith(("/api/v1/tuf/", "/api/v1/log/"))]
    assert probes == ["/api/v1/tuf/1.root.json", "/api/v1/log/tree-head"]
    resolve, blob = (p for p in paths if p not in probes)
    assert resolve.startswith("/api/v1/resolve/acme/tips?spec=")
    assert blob.startswith(f"/api/v1/blobs/{result.sha256}")
    assert set(read_lockfile(lock)) == {"acme/tips"}


def test_memos_upgrade_locked_install_remove_and_gc(
    home: Path, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    registry.publish(build_pack(tmp_path, name="acme/tips", keys=[key], memories=["one"]))
    lock = tmp_path / "memos.lock"
    with _memos(home, registry.as_transport()) as mem:
        mem.install("acme/tips", lockfile=lock)
        registry.publish(
            build_pack(tmp_path, name="acme/tips", version="1.1.0", keys=[key], memories=["two"])
        )
        [upgraded] = mem.upgrade(progress=lambda name: None, lockfile=lock)
        assert (upgraded.previous_version, upgraded.version) == ("1.0.0", "1.1.0")
        [again] = mem.install_locked(lock)
        assert not again.changed and again.version == "1.1.0"
        assert mem.remove("acme/tips", lockfile=lock) == 1
        assert mem.installed() == [] and read_lockfile(lock) == {}
        assert mem.gc() == []  # remove already freed the pack's blobs


def test_memos_installs_a_local_file_with_trusted_keys(
    home: Path, key: SigningKey, tmp_path: Path
) -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a file install asked the registry for {request.url}")

    pack = build_pack(tmp_path, name="acme/local", keys=[key], memories=["local memory"])
    with _memos(home, httpx.MockTransport(no_network)) as mem:
        result = mem.install(pack, trusted_keys=[key.public_key])
        assert result.source == "file" and mem.manifest("acme/local").name == "acme/local"


def test_registry_errors_come_back_through_the_transport(home: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "registry.not_found", "message": "no pack", "detail": {}}}
        return httpx.Response(404, json=body)

    with _memos(home, httpx.MockTransport(refuse)) as mem, pytest.raises(RegistryError) as info:
        mem.install("acme/missing")
    assert info.value.code == "registry.not_found"


def test_is_pack_file_tells_files_from_registry_names(tmp_path: Path) -> None:
    existing = tmp_path / "pack.bin"
    existing.write_bytes(b"x")
    assert is_pack_file("./tips.memcube") and is_pack_file(existing)
    assert not is_pack_file("acme/tips@^1") and not is_pack_file(tmp_path / "missing")
