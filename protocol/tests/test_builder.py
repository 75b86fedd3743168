import json
import os

import pytest

from protocol import (
    ArchiveError,
    MIPError,
    PublicKey,
    build_manifest,
    pack_directory,
    read_pack,
    sign_pack,
    verify_or_raise,
)
from protocol.conformance import generate as g


def test_pack_directory_fills_in_digests_and_media_types(tmp_path, all_types_source):
    data = json.loads((all_types_source / "manifest.json").read_text())
    for cube in data["cubes"]:
        for payload in cube["payloads"]:
            for key in ("size", "sha256", "media_type"):
                payload.pop(key)
    (all_types_source / "manifest.json").write_text(json.dumps(data))
    pack = pack_directory(all_types_source, tmp_path / "out.memcube", keys=[g.KEY_A])
    assert pack.manifest.memory_types == ["activation", "parameter", "plaintext"]
    assert verify_or_raise(pack.manifest_bytes, pack.signatures, [g.KEY_A.public_key]).ok


def test_packing_twice_gives_identical_bytes(tmp_path, plaintext_source):
    a = pack_directory(plaintext_source, tmp_path / "a.memcube", keys=[g.KEY_A])
    b = pack_directory(plaintext_source, tmp_path / "b.memcube", keys=[g.KEY_A])
    assert a.file_sha256 == b.file_sha256


def test_build_refuses_missing_manifest_missing_payload_and_symlinks(tmp_path, plaintext_source):
    with pytest.raises(ArchiveError) as info:
        build_manifest(tmp_path / "nowhere")
    assert info.value.code == "build.no_manifest"
    payload = plaintext_source / "payloads/notes/memories.jsonl"
    target = tmp_path / "elsewhere.jsonl"
    payload.rename(target)
    with pytest.raises(ArchiveError) as info:
        build_manifest(plaintext_source)
    assert info.value.code == "build.missing_payload"
    payload.symlink_to(target)
    with pytest.raises(ArchiveError) as info:
        build_manifest(plaintext_source)
    assert info.value.code == "build.not_regular_file"


def test_build_refuses_a_payload_folder_that_escapes(tmp_path, plaintext_source):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "memories.jsonl").write_bytes(g.NOTES)
    folder = plaintext_source / "payloads/notes"
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArchiveError) as info:
        build_manifest(plaintext_source)
    assert info.value.code == "archive.path_traversal"


def test_build_refuses_a_manifest_that_is_not_an_object_or_invalid(plaintext_source):
    (plaintext_source / "manifest.json").write_text("[1]")
    with pytest.raises(ArchiveError):
        build_manifest(plaintext_source)
    (plaintext_source / "manifest.json").write_text(
        json.dumps(
            {
                "mip_version": "1.0",
                "cubes": [5, {"payloads": 3}, {"payloads": [5, {"path": "../x"}]}],
            }
        )
    )
    with pytest.raises(MIPError) as info:
        build_manifest(plaintext_source)
    assert info.value.code == "manifest.schema"


def test_pack_directory_removes_its_output_when_the_readback_fails(tmp_path, plaintext_source):
    (plaintext_source / "payloads/notes/memories.jsonl").write_bytes(b'{"id": "x"}\n')
    with pytest.raises(MIPError):
        pack_directory(plaintext_source, tmp_path / "out.memcube")
    assert not (tmp_path / "out.memcube").exists()


def test_sign_pack_adds_signatures_and_keeps_existing_ones(tmp_path, plaintext_source):
    path = tmp_path / "p.memcube"
    pack_directory(plaintext_source, path, keys=[g.KEY_A])
    signed = sign_pack(path, [g.KEY_B])
    assert {s.keyid for s in signed.signatures} == {g.KEY_A.keyid, g.KEY_B.keyid}
    out = tmp_path / "copy.memcube"
    again = sign_pack(path, [g.KEY_C], out=out)
    assert len(again.signatures) == 3 and len(read_pack(path).signatures) == 2
    assert not [p for p in os.listdir(tmp_path) if ".sign-" in p]


def test_sign_pack_keeps_unknown_fields_and_their_signature(tmp_path):
    src = tmp_path / "v.memcube"
    src.write_bytes((g.VECTORS_DIR / "valid-unknown-future-fields.memcube").read_bytes())
    pack = sign_pack(src, [g.KEY_B])
    keys = [PublicKey.from_text(g.KEY_A.public_key.to_text()), g.KEY_B.public_key]
    assert verify_or_raise(pack.manifest_bytes, pack.signatures, keys, threshold=2).ok
    assert pack.manifest.extra["x_future_top"] == "kept and signed"
