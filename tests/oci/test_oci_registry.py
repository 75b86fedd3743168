"""MIP packs through a real OCI distribution registry (Debian's docker-registry on loopback):
push, install, idempotent re-push, and every refusal a hostile registry can provoke."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import OCIRegistry
from oci_helpers import ROOT, Recorder, memos, upload_as

from protocol import (
    IntegrityError,
    SignatureError,
    SigningKey,
    manifest_blobs,
    pack_directory,
    read_pack,
)
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.install import Installer
from runtime.oci import (
    OCIClient,
    OCIError,
    PushResult,
    install_from_oci,
    parse_reference,
    push_pack,
)
from runtime.tests.helpers import FixedClock, build_pack, lora_cube, write_source

pytestmark = pytest.mark.integration

MEMORIES = ["Run cargo clippy before every commit", "Prefer iterators to index loops"]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "home", embedder=HashEmbedder(), clock=FixedClock(),
                 maintain_every=None)  # fmt: skip
    yield eng
    eng.close()


@pytest.fixture
def installer(tmp_path: Path, engine: Engine) -> Installer:
    return Installer(tmp_path / "home", engine)


@pytest.fixture
def pack(tmp_path: Path, key: SigningKey) -> Path:
    return build_pack(tmp_path, name="acme/tips", keys=[key], memories=MEMORIES,
                      extra_cubes=[lora_cube()])  # fmt: skip


def _push(path: Path, target: str, *, monolithic_max: int = 64 * 1024**2,
          chunk_size: int = 16 * 1024**2) -> tuple[Recorder, PushResult]:  # fmt: skip
    ref = parse_reference(target)
    recorder = Recorder()
    with OCIClient(ref.base_url(), ref.repository, transport=recorder,
                   monolithic_max=monolithic_max, chunk_size=chunk_size) as client:  # fmt: skip
        result = push_pack(path, ref, client)
    return recorder, result


def test_push_then_install_round_trip_through_the_cli(
    tmp_path: Path, oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey, pack: Path
) -> None:
    pub = tmp_path / "acme.pub"
    pub.write_text(key.public_key.to_text(), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_HOME=str(tmp_path / "cli-home"), MEMOS_EMBEDDER="hash",
               MEMOS_PRINCIPAL="tester", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")  # fmt: skip
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")

    pushed = json.loads(memos(["push", str(pack), target, "--json"], env, tmp_path).stdout)
    assert pushed["name"] == "acme/tips" and pushed["uploaded"]
    installed = json.loads(
        memos(["install", target, "--trusted-key", str(pub), "--json"], env, tmp_path).stdout
    )
    assert [(r["name"], r["version"], r["source"]) for r in installed] == [
        ("acme/tips", "1.0.0", "oci")
    ]
    found = json.loads(memos(["search", "cargo clippy", "--json"], env, tmp_path).stdout)
    assert any("cargo clippy" in hit["text"] for hit in found)
    listed = json.loads(memos(["list", "--json"], env, tmp_path).stdout)
    assert [p["name"] for p in listed] == ["acme/tips"]


def test_second_push_uploads_no_blob(
    oci_registry: OCIRegistry, repo_prefix: str, pack: Path
) -> None:
    target = oci_registry.reference(f"{repo_prefix}/acme/tips")
    _, first = _push(pack, target)
    second_log, second = _push(pack, target)
    assert first.uploaded and first.bytes_uploaded > 0
    assert second.uploaded == () and second.bytes_uploaded == 0
    assert second_log.uploads() == []
    assert [m for m, _ in second_log.requests if m != "HEAD"] == ["PUT"]  # the manifest only
    assert second.manifest_digest == first.manifest_digest
    assert first.reference.endswith(":1.0.0")  # the version's tag


def test_chunked_upload_round_trips(
    tmp_path: Path, oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey,
    installer: Installer,
) -> None:
    big = build_pack(tmp_path / "big", name="acme/big", keys=[key], memories=MEMORIES,
                     extra_cubes=[lora_cube(floats=300_000)])  # fmt: skip
    target = oci_registry.reference(f"{repo_prefix}/acme/big", "1.0.0")
    log, _ = _push(big, target, monolithic_max=64 * 1024, chunk_size=100 * 1024)
    assert any(m == "PATCH" for m, _ in log.uploads())
    result = install_from_oci(installer, target, trusted_keys=[key.public_key], everything=True)
    assert result.memories >= 2
    for entry in manifest_blobs(read_pack(big).manifest):
        assert installer.cache.is_intact(entry.sha256, entry.size)


def test_install_by_digest(
    oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey, pack: Path,
    installer: Installer,
) -> None:
    _, pushed = _push(pack, oci_registry.reference(f"{repo_prefix}/acme/tips"))
    target = f"oci://{oci_registry.host}/{repo_prefix}/acme/tips@{pushed.manifest_digest}"
    assert install_from_oci(installer, target, trusted_keys=[key.public_key]).changed


def test_install_refuses_a_tampered_blob_by_digest(
    oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey, pack: Path,
    installer: Installer,
) -> None:
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")
    _push(pack, target)
    memories = next(e for e in manifest_blobs(read_pack(pack).manifest)
                    if e.media_type.endswith("memories+jsonl"))  # fmt: skip
    data = oci_registry.blob_data(f"sha256:{memories.sha256}")
    original = data.read_bytes()
    data.write_bytes(original.replace(b"clippy", b"CLIPPY"))  # same size, other bytes
    try:
        with pytest.raises(IntegrityError) as info:
            install_from_oci(installer, target, trusted_keys=[key.public_key])
        assert info.value.code == "integrity.digest_mismatch"
        assert installer.installed() == []
        assert not installer.cache.has(memories.sha256)
    finally:
        data.write_bytes(original)


def test_install_refuses_an_untrusted_signer_before_fetching_any_blob(
    oci_registry: OCIRegistry, repo_prefix: str, other_key: SigningKey, pack: Path,
    installer: Installer,
) -> None:
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")
    _push(pack, target)
    recorder = Recorder()
    with pytest.raises(SignatureError) as info:
        install_from_oci(installer, target, trusted_keys=[other_key.public_key],
                         transport=recorder)  # fmt: skip
    assert info.value.code == "signature.untrusted"
    payloads = {f"sha256:{e.sha256}" for e in manifest_blobs(read_pack(pack).manifest)}
    assert recorder.blob_gets() and not payloads & set(recorder.blob_gets())
    assert installer.installed() == []


def test_install_refuses_a_tag_pointing_to_another_packs_manifest(
    tmp_path: Path, oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey,
    installer: Installer,
) -> None:
    other = build_pack(tmp_path / "other", name="acme/other", keys=[key],
                       memories=["Something else entirely"])  # fmt: skip
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")
    upload_as(other, target, tmp_path / "work")  # signed by the trusted key, but another pack
    recorder = Recorder()
    with pytest.raises(OCIError) as info:
        install_from_oci(installer, target, trusted_keys=[key.public_key], transport=recorder)
    assert info.value.code == "oci.name_mismatch"
    payloads = {f"sha256:{e.sha256}" for e in manifest_blobs(read_pack(other).manifest)}
    assert not payloads & set(recorder.blob_gets())
    assert installer.installed() == []


def test_install_refuses_a_version_tag_on_another_version(
    oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey, pack: Path,
    installer: Installer,
) -> None:
    _, pushed = _push(pack, oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0"))
    ref = parse_reference(oci_registry.reference(f"{repo_prefix}/acme/tips", "2.0.0"))
    with OCIClient.for_reference(ref) as client:
        data, _ = client.get_manifest(pushed.manifest_digest, limit=1 << 20)
        client.put_manifest("2.0.0", data)
        client.put_manifest("latest", data)
    with pytest.raises(OCIError) as info:
        install_from_oci(installer, str(ref), trusted_keys=[key.public_key])
    assert info.value.code == "oci.version_mismatch"
    latest = oci_registry.reference(f"{repo_prefix}/acme/tips", "latest")
    assert install_from_oci(installer, latest, trusted_keys=[key.public_key]).version == "1.0.0"


def test_push_refuses_a_repository_named_after_another_pack(
    oci_registry: OCIRegistry, repo_prefix: str, pack: Path
) -> None:
    with pytest.raises(OCIError) as info:
        _push(pack, oci_registry.reference(f"{repo_prefix}/acme/other", "1.0.0"))
    assert info.value.code == "oci.name_mismatch"


def test_install_of_a_missing_tag_is_not_found(
    oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey, installer: Installer
) -> None:
    with pytest.raises(OCIError) as info:
        install_from_oci(installer, oci_registry.reference(f"{repo_prefix}/acme/tips", "9.9.9"),
                         trusted_keys=[key.public_key])  # fmt: skip
    assert info.value.code == "oci.not_found"


def test_install_fetches_only_the_blobs_the_engine_uses(
    tmp_path: Path, oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey, engine: Engine
) -> None:
    fp_b = {"architecture": "LlamaForCausalLM", "model_id": "tiny/other", "config_sha256": "d" * 64,
            "tokenizer_sha256": "b" * 64, "dtype": "float32", "num_layers": 2,
            "num_kv_heads": 1, "head_dim": 4}  # fmt: skip
    two = build_pack(tmp_path / "two", name="acme/tips", keys=[key], memories=MEMORIES,
                     extra_cubes=[lora_cube("for-a", seed=1),
                                  lora_cube("for-b", seed=2, fingerprint=fp_b)])  # fmt: skip
    manifest = read_pack(two).manifest
    cubes = {c.id: c for c in manifest.cubes}
    model_a = cubes["for-a"].model
    assert model_a is not None
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")
    _push(two, target)
    installer = Installer(tmp_path / "home", engine, model_fingerprint=model_a.digest())
    recorder = Recorder()
    install_from_oci(installer, target, trusted_keys=[key.public_key], transport=recorder)
    fetched = set(recorder.blob_gets())
    by_cube = {b.sha256: set(b.cubes) for b in manifest_blobs(manifest)}
    wanted = {f"sha256:{d}" for d, c in by_cube.items() if c & {"notes", "for-a"}}
    only_b = {f"sha256:{d}" for d, c in by_cube.items() if c == {"for-b"}}
    assert wanted <= fetched and only_b and not only_b & fetched


def test_a_mip2_pack_installs_from_oci_as_from_its_file(
    tmp_path: Path, oci_registry: OCIRegistry, repo_prefix: str, key: SigningKey
) -> None:
    long = [f"Memory number {i}: " + "lorem ipsum dolor sit amet " * 8 for i in range(200)]
    source = write_source(tmp_path / "src2", name="acme/tips", memories=long,
                          extra_cubes=[lora_cube()])  # fmt: skip
    mip2 = tmp_path / "tips-2.memcube"
    pack_directory(source, mip2, keys=[key], mip_version="2.0")
    manifest = read_pack(mip2).manifest
    assert manifest.major == 2
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")
    _, pushed = _push(mip2, target)
    assert len(pushed.uploaded) == len(manifest_blobs(manifest)) + 2  # + config + signature

    states = []
    for name, install in (
        ("file", lambda inst: inst.install_file(mip2, trusted_keys=[key.public_key])),
        ("oci", lambda inst: install_from_oci(inst, target, trusted_keys=[key.public_key])),
    ):
        eng = Engine(tmp_path / name, embedder=HashEmbedder(), clock=FixedClock(),
                     maintain_every=None)  # fmt: skip
        try:
            result = install(Installer(tmp_path / name, eng))
            rows = sorted((m.id, m.text, dict(m.payloads)) for _, m, _ in
                          eng.store.pack_rows("acme/tips"))  # fmt: skip
            states.append((result.version, result.memories, rows))
        finally:
            eng.close()
    assert states[0] == states[1] and states[0][1] >= len(long)


class _FailingUploads(Recorder):
    """Breaks the connection at the ``fail_at``-th upload start (a push killed mid-way)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/blobs/uploads/"):
            self.fail_at -= 1
            if self.fail_at == 0:
                raise httpx.ReadError("connection reset", request=request)
        return super().handle_request(request)


def test_an_interrupted_push_leaves_no_tag_and_the_rerun_sends_only_the_rest(
    oci_registry: OCIRegistry, repo_prefix: str, pack: Path, key: SigningKey,
    installer: Installer,
) -> None:
    target = oci_registry.reference(f"{repo_prefix}/acme/tips", "1.0.0")
    ref = parse_reference(target)
    broken = _FailingUploads(fail_at=3)
    with pytest.raises(OCIError) as info, OCIClient(ref.base_url(), ref.repository,
                                                    transport=broken) as client:  # fmt: skip
        push_pack(pack, ref, client)
    assert info.value.code == "oci.network"
    with pytest.raises(OCIError) as missing:
        install_from_oci(installer, target, trusted_keys=[key.public_key])
    assert missing.value.code == "oci.not_found"  # no tag points at missing content
    _, rerun = _push(pack, target)
    assert len(rerun.skipped) == 2 and len(rerun.uploaded) == 3  # 5 blobs in all
    assert install_from_oci(installer, target, trusted_keys=[key.public_key]).changed
