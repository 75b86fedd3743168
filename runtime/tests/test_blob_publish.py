"""Publishing blob by blob (runtime.blob_publish) against the fake MIP 2 registry.

Only the blobs the registry lacks travel; each upload resumes from the registry's
offset (a lost answer, a broken connection, a rerun after a killed publish); a
failed upload publishes nothing; an older registry gets the whole pack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SigningKey, manifest_blobs, read_pack
from runtime._wire import parse_blob_upload, parse_blobs_missing
from runtime.blob_publish import BlobsUnsupported, publish_blobs
from runtime.client import RegistryClient
from runtime.errors import RegistryError

from .fake_blob_uploads import BlobUploadRegistry
from .helpers import build_pack, plain_cube

KEY = SigningKey.from_seed(b"p" * 32)
CUBES = 10


def _memories(cube: int, version: int, changed: int) -> list[str]:
    """~20 KB of distinct text per cube; cube ``changed`` differs from version 2 on."""
    tag = f"v{version}" if cube == changed and version > 1 else "v1"
    return [
        f"{cube}-{i}-{tag} " + hashlib.sha256(f"{cube}/{i}/{tag}".encode()).hexdigest() * 3
        for i in range(100)
    ]


def ten_blob_pack(
    tmp: Path, version: str = "1.0.0", *, changed: int = 3, mip_version: str | None = None
) -> Path:
    """A signed pack of 10 plaintext cubes (10 memories files, 10 blobs)."""
    number = int(version.split(".")[1]) + 1
    extra = [plain_cube(f"c{i}", _memories(i, number, changed)) for i in range(1, CUBES)]
    return build_pack(
        tmp / version, name="acme/tips", version=version, keys=[KEY],
        memories=_memories(0, number, changed), extra_cubes=extra, mip_version=mip_version,
    )  # fmt: skip


@pytest.fixture
def registry() -> BlobUploadRegistry:
    return BlobUploadRegistry(max_chunk_bytes=64 * 1024)


@pytest.fixture
def client(registry: BlobUploadRegistry) -> Iterator[RegistryClient]:
    with RegistryClient("http://registry.test", token="t", transport=registry.as_transport()) as c:
        yield c


def _no_sleep(_: float) -> None:
    pass


def test_publish_sends_every_blob_once_then_the_exact_manifest(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    path = ten_blob_pack(tmp_path)
    pack = read_pack(path)
    seen: list[tuple[int, int]] = []
    sent = publish_blobs(client, path, chunk_size=16 * 1024, progress=lambda *a: seen.append(a))
    sizes = sum(b.size for b in manifest_blobs(pack.manifest))
    assert (sent.blobs_total, sent.blobs_sent, sent.blobs_present) == (CUBES, CUBES, 0)
    assert sent.bytes_sent == sent.bytes_total == sizes == registry.bytes_received
    assert max(registry.patch_bytes) <= 16 * 1024
    assert sent.published.ref == "acme/tips@1.0.0"
    (published,) = registry.manifests
    assert published.manifest_bytes == pack.manifest_bytes  # the signed bytes, unchanged
    assert published.signatures == [s.to_dict() for s in pack.signatures]
    assert seen[-1] == (sizes, sizes) and len(seen) > CUBES
    assert all(done <= total for done, total in seen)


@pytest.mark.parametrize("mip_version", [None, "2.0"])
def test_a_new_version_sends_only_the_blob_that_changed(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient, mip_version: str | None
) -> None:
    first = publish_blobs(client, ten_blob_pack(tmp_path, "1.0.0", mip_version=mip_version))
    before = registry.bytes_received
    second = publish_blobs(client, ten_blob_pack(tmp_path, "1.1.0", mip_version=mip_version))
    assert (second.blobs_sent, second.blobs_present) == (1, CUBES - 1)
    assert registry.bytes_received - before == second.bytes_sent
    assert second.bytes_sent <= 0.15 * first.bytes_sent
    assert [m.manifest.version for m in registry.manifests] == ["1.0.0", "1.1.0"]
    assert registry.manifests[0].manifest.major == (2 if mip_version else 1)


def test_the_same_pack_again_sends_no_blob_and_gets_the_registrys_refusal(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    path = ten_blob_pack(tmp_path)
    publish_blobs(client, path)
    before = registry.bytes_received
    with pytest.raises(RegistryError) as caught:
        publish_blobs(client, path)
    assert caught.value.code == "registry.version_exists"
    assert registry.bytes_received == before


def test_a_broken_upload_publishes_nothing_and_a_rerun_resumes_every_blob(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    """The connection dies for good after 5 chunks (a killed publish): nothing is published;
    the rerun sends exactly the bytes the registry did not get, none twice."""
    path = ten_blob_pack(tmp_path)
    registry.fail_patches = set(range(6, 10_000))
    with pytest.raises(RegistryError) as caught:
        publish_blobs(client, path, chunk_size=4096, workers=3, retries=2, sleep=_no_sleep)
    assert caught.value.code == "network.unreachable"
    assert registry.manifests == []
    arrived = sum(len(u.data) for u in registry.uploads.values())
    assert 0 < arrived < sum(b.size for b in manifest_blobs(read_pack(path).manifest))

    registry.fail_patches = set()
    again = publish_blobs(client, path, chunk_size=4096, workers=3, sleep=_no_sleep)
    assert again.bytes_sent + arrived == again.bytes_total  # what arrived is not sent again
    assert again.bytes_resumed > 0  # (some blob was cut in the middle)
    assert [m.manifest.ref for m in registry.manifests] == ["acme/tips@1.0.0"]
    for entry in manifest_blobs(read_pack(path).manifest):
        assert hashlib.sha256(registry.stored[entry.sha256]).hexdigest() == entry.sha256


def test_a_lost_answer_or_a_dropped_chunk_is_resumed_from_the_registrys_offset(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    path = ten_blob_pack(tmp_path)
    total = sum(b.size for b in manifest_blobs(read_pack(path).manifest))
    registry.lost_answers = {2, 9}  # applied, answer lost: not sent again
    registry.fail_patches = {5}  # never arrived: sent again
    sent = publish_blobs(client, path, chunk_size=4096, workers=1, sleep=_no_sleep)
    assert sent.published.ref == "acme/tips@1.0.0"
    assert sent.bytes_sent == total + registry.patch_bytes[4]  # only the dropped chunk twice
    gets = [r for r in registry.requests if r[0] == "GET" and "/blobs/uploads/" in r[1]]
    assert len(gets) == 3


def test_a_rerun_after_a_killed_publish_continues_an_open_upload(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    """The process died: the client kept no state; the registry's open upload has the offset."""
    path = ten_blob_pack(tmp_path)
    entry = manifest_blobs(read_pack(path).manifest)[0]
    registry.dispatch(
        "POST", "/api/v1/blobs/uploads", {}, json.dumps({"sha256": entry.sha256,
                                                         "size": entry.size}).encode()
    )  # fmt: skip
    (upload,) = registry.uploads.values()
    root = tmp_path / "x"
    blob = next(
        read_pack(path, target=root).payload_path(ref)
        for cube in read_pack(path).manifest.cubes
        for ref in cube.payloads
        if ref.sha256 == entry.sha256
    )
    upload.data += blob.read_bytes()[:5000]
    sent = publish_blobs(client, path)
    assert sent.bytes_resumed == 5000
    assert sent.bytes_sent == sent.bytes_total - 5000
    assert registry.stored[entry.sha256] == blob.read_bytes()


def test_a_refused_upload_publishes_nothing(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    path = ten_blob_pack(tmp_path)
    registry.max_chunk_bytes = 1024
    original = registry._append

    def refuse(upload: Any, offset: int, body: bytes) -> Any:
        if len(registry.patch_bytes) >= 3:
            registry.patch_bytes.append(len(body))
            return registry._fail(400, "blob.digest_mismatch", "digest", expected=upload.sha256)
        return original(upload, offset, body)

    registry._append = refuse  # type: ignore[method-assign]
    with pytest.raises(RegistryError) as caught:
        publish_blobs(client, path, chunk_size=1024, sleep=_no_sleep)
    assert caught.value.code == "blob.digest_mismatch"
    assert registry.manifests == []
    assert not any(r[1].endswith("publish-manifest") for r in registry.requests)


def test_an_older_registry_is_told_apart_before_a_byte_is_sent(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    registry.blob_endpoints = False
    with pytest.raises(BlobsUnsupported) as caught:
        publish_blobs(client, ten_blob_pack(tmp_path))
    assert caught.value.code == "registry.blobs_unsupported"
    assert [r[1] for r in registry.requests] == ["/api/v1/blobs/missing"]


def test_a_blob_removed_before_the_publish_is_uploaded_again(
    tmp_path: Path, registry: BlobUploadRegistry, client: RegistryClient
) -> None:
    path = ten_blob_pack(tmp_path)
    original = registry._publish
    gone = manifest_blobs(read_pack(path).manifest)[4].sha256

    def forget_once(data: dict[str, Any]) -> Any:
        if not registry.manifests and gone in registry.stored and len(registry.requests) < 200:
            del registry.stored[gone]
            for upload in registry.uploads.values():
                if upload.sha256 == gone:
                    upload.status = "expired"
            registry._publish = original  # type: ignore[method-assign]
        return original(data)

    registry._publish = forget_once  # type: ignore[method-assign]
    sent = publish_blobs(client, path)
    assert sent.published.ref == "acme/tips@1.0.0"
    assert gone in registry.stored


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[BlobUploadRegistry]:
    registry = BlobUploadRegistry(require_token="tok").start()
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMOS_TOKEN", "tok")
    monkeypatch.setenv("MEMOS_REGISTRY", registry.url)
    yield registry
    registry.stop()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from runtime.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_memos_publish_says_what_it_sent_and_what_was_there(
    tmp_path: Path, served: BlobUploadRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = ten_blob_pack(tmp_path, mip_version="2.0")
    code, out, err = _cli(capsys, "publish", str(v1), "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["mode"] == "blobs" and first["blobs"]["sent"] == CUBES
    v2 = ten_blob_pack(tmp_path, "1.1.0", mip_version="2.0")
    code, out, err = _cli(capsys, "publish", str(v2), "-q")
    assert code == 0, err
    assert "sent 1 of 10 blobs" in out and "9 already on the registry" in out
    assert served.whole_uploads == []


def test_memos_publish_falls_back_to_the_whole_pack_or_is_told_to(
    tmp_path: Path, served: BlobUploadRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ten_blob_pack(tmp_path, mip_version="2.0")
    code, out, err = _cli(capsys, "publish", str(path), "--whole", "--json")
    assert code == 0, err
    assert json.loads(out)["mode"] == "whole" and len(served.whole_uploads) == 1
    assert served.patch_bytes == []
    served.blob_endpoints = False
    code, out, err = _cli(capsys, "publish", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["mode"] == "whole" and len(served.whole_uploads) == 2
    assert "whole packs only" in err


def test_memos_publish_sends_a_mip1_pack_whole(
    tmp_path: Path, served: BlobUploadRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Published by manifest, a 1.x pack would have no .memcube for pre-MIP 2 clients."""
    code, out, err = _cli(capsys, "publish", str(ten_blob_pack(tmp_path)), "--json")
    assert code == 0, err
    assert json.loads(out)["mode"] == "whole" and len(served.whole_uploads) == 1
    assert served.patch_bytes == [] and served.manifests == []


def test_memos_publish_names_a_broken_blob_upload_and_publishes_nothing(
    tmp_path: Path,
    served: BlobUploadRegistry,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("runtime.blob_publish._pause", _no_sleep)
    served.fail_patches = set(range(1, 10_000))
    pack = ten_blob_pack(tmp_path, mip_version="2.0")
    code, _, err = _cli(capsys, "publish", str(pack), "-q")
    assert code == 1
    assert "network.unreachable" in err and "memos publish" in err
    assert served.manifests == []


# ---------------------------------------------------------------- the wire (outside data)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
_upload_like = st.fixed_dictionaries(
    {
        "id": st.text(max_size=8),
        "sha256": st.sampled_from(["a" * 64, "A" * 64, "x", ""]),
        "size": st.integers(-2, 10),
        "offset": st.integers(-2, 12) | st.booleans() | st.none(),
        "status": st.sampled_from(["open", "completed", "failed", "weird"]),
    },
    optional={"max_chunk_bytes": _json},
)


@given(st.one_of(_json, _upload_like))
def test_an_upload_answer_is_parsed_or_refused_as_a_bad_response(data: Any) -> None:
    try:
        upload = parse_blob_upload(data)
    except RegistryError as exc:
        code = exc.code
    else:
        code = "parsed"
        assert 0 <= upload.offset <= upload.size and len(upload.sha256) == 64 and upload.id
    assert code in ("parsed", "registry.bad_response")


@given(st.one_of(_json, st.fixed_dictionaries({"missing": st.lists(_json | st.just("a" * 64))})))
def test_a_missing_answer_names_only_asked_digests(data: Any) -> None:
    asked = ["a" * 64, "b" * 64]
    try:
        missing = parse_blobs_missing(data, asked)
    except RegistryError as exc:
        code = exc.code
    else:
        code = "parsed"
        assert set(missing) <= set(asked) and len(set(missing)) == len(missing)
    assert code in ("parsed", "registry.bad_response")


def test_a_version_without_a_pack_file_resolves_to_its_manifest_and_blobs(tmp_path: Path) -> None:
    """Resolve of a version published as a manifest over blobs answers ``pack: null``."""
    import base64

    from runtime._wire import parse_resolution

    pack = read_pack(ten_blob_pack(tmp_path))
    blobs = manifest_blobs(pack.manifest)
    answer = {
        "name": "acme/tips",
        "version": "1.0.0",
        "manifest_b64": base64.b64encode(pack.manifest_bytes).decode(),
        "signatures": [s.to_dict() for s in pack.signatures],
        "keys": [],
        "pack": None,
        "blobs": [
            {"sha256": b.sha256, "size": b.size, "media_type": b.media_type, "url": "/b"}
            for b in blobs
        ],
    }
    res = parse_resolution(answer)
    assert res.pack.url == "" and res.pack.size == sum(b.size for b in blobs)
    assert res.pack.sha256 == hashlib.sha256(pack.manifest_bytes).hexdigest()
    with pytest.raises(RegistryError) as caught:
        parse_resolution({**answer, "blobs": []})
    assert caught.value.code == "registry.bad_response"
