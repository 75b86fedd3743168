import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from protocol import (
    MANIFEST_MEMBER,
    ArchiveError,
    IntegrityError,
    LimitExceededError,
    Manifest,
    MIPError,
    ReadLimits,
    read_pack,
    write_pack,
)
from protocol.archive import is_regular_file
from protocol.conformance import generate as g


def _manifest(*cubes):
    return Manifest.from_dict(g.manifest_dict(*cubes))


def _write(tmp_path, keys=(g.KEY_A,), name="p.memcube"):
    manifest = _manifest()
    sigs = [k.sign(manifest.canonical_bytes()) for k in keys]
    return write_pack(tmp_path / name, manifest, {"payloads/notes/memories.jsonl": g.NOTES}, sigs)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(root.rglob("*"))
    }


def test_write_is_deterministic_and_matches_the_hand_built_layout(tmp_path):
    a = _write(tmp_path, name="a.memcube").read_bytes()
    b = _write(tmp_path, name="b.memcube").read_bytes()
    assert a == b
    assert a == g.pack_bytes(
        g.manifest_dict(), {"payloads/notes/memories.jsonl": g.NOTES}, (g.KEY_A,)
    )
    assert (
        a[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    )  # gzip, no name, mtime 0, OS unknown
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(a))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        MANIFEST_MEMBER,
        "payloads/notes/memories.jsonl",
        f"signatures/{g.KEY_A.keyid}.json",
    ]
    assert all((m.mtime, m.uid, m.gid, m.mode, m.uname) == (0, 0, 0, 0o644, "") for m in members)


def test_read_returns_manifest_signatures_and_file_digest(tmp_path):
    path = _write(tmp_path, keys=(g.KEY_B, g.KEY_A))
    pack = read_pack(path)
    assert pack.manifest == _manifest()
    assert pack.manifest_bytes == _manifest().canonical_bytes()
    assert [s.keyid for s in pack.signatures] == sorted([g.KEY_A.keyid, g.KEY_B.keyid])
    assert pack.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pack.file_size == path.stat().st_size
    assert pack.root is None
    with pytest.raises(ValueError, match="without extracting"):
        pack.payload_path(pack.manifest.payloads()[0])
    with open(path, "rb") as fh:
        assert read_pack(fh).file_sha256 == pack.file_sha256


def test_read_extracts_into_the_target_only(tmp_path):
    path = _write(tmp_path)
    target = tmp_path / "new" / "deeper" / "out"
    pack = read_pack(path, target=target)
    ref = pack.manifest.payloads()[0]
    assert pack.payload_path(ref).read_bytes() == g.NOTES
    assert (target / MANIFEST_MEMBER).read_bytes() == pack.manifest_bytes
    assert not (target / ".mip-partial").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_pack(path, target=empty).root == empty


def test_failed_read_leaves_no_trace_even_for_created_parents(tmp_path):
    bad = tmp_path / "bad.memcube"
    bad.write_bytes((g.VECTORS_DIR / "invalid-digest-mismatch.memcube").read_bytes())
    before = _snapshot(tmp_path)
    with pytest.raises(IntegrityError):
        read_pack(bad, target=tmp_path / "a" / "b" / "out")
    assert _snapshot(tmp_path) == before
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(IntegrityError):
        read_pack(bad, target=existing)
    assert existing.is_dir() and not any(existing.iterdir())


def test_target_must_be_an_empty_directory(tmp_path):
    path = _write(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    afile = tmp_path / "afile"
    afile.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "empty-target", target_is_directory=True)
    (tmp_path / "empty-target").mkdir()
    for target in (full, afile, link):
        with pytest.raises(ArchiveError) as info:
            read_pack(path, target=target)
        assert info.value.code == "archive.target_not_empty"
    assert (full / "x").read_text() == "x"


def test_check_content_false_skips_content_checks_but_not_digests(tmp_path):
    path = tmp_path / "p.memcube"
    path.write_bytes((g.VECTORS_DIR / "invalid-memory-record.memcube").read_bytes())
    with pytest.raises(MIPError):
        read_pack(path)
    read_pack(path, check_content=False)


def test_writer_refuses_payloads_that_do_not_match_the_manifest(tmp_path):
    manifest = _manifest()
    with pytest.raises(ArchiveError) as info:
        write_pack(tmp_path / "x.memcube", manifest, {})
    assert info.value.code == "archive.payload_set_mismatch"
    with pytest.raises(IntegrityError) as info2:
        write_pack(tmp_path / "x.memcube", manifest, {"payloads/notes/memories.jsonl": b"other"})
    assert info2.value.code == "integrity.digest_mismatch"
    source = tmp_path / "notes.jsonl"
    source.write_bytes(g.NOTES + b"x")
    with pytest.raises(IntegrityError):
        write_pack(tmp_path / "x.memcube", manifest, {"payloads/notes/memories.jsonl": source})
    assert not (tmp_path / "x.memcube").exists()
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]


def test_writer_streams_payload_files(tmp_path):
    source = tmp_path / "notes.jsonl"
    source.write_bytes(g.NOTES)
    out = write_pack(tmp_path / "f.memcube", _manifest(), {"payloads/notes/memories.jsonl": source})
    assert out.read_bytes() == g.pack_bytes(
        g.manifest_dict(), {"payloads/notes/memories.jsonl": g.NOTES}
    )


def test_signatures_by_one_key_are_written_once(tmp_path):
    manifest = _manifest()
    sig = g.KEY_A.sign(manifest.canonical_bytes())
    path = write_pack(
        tmp_path / "p.memcube", manifest, {"payloads/notes/memories.jsonl": g.NOTES}, [sig, sig]
    )
    assert len(read_pack(path).signatures) == 1


def _pack_file(tmp_path, data: bytes) -> Path:
    path = tmp_path / "crafted.memcube"
    path.write_bytes(data)
    return path


def test_garbled_header_in_the_middle_is_not_silently_ignored(tmp_path):
    manifest = g.manifest_dict()
    members = g.pack_members(manifest, g.payload_map(manifest, [g.NOTES]), (g.KEY_A,))
    raw = bytearray(g.tar_bytes(members))
    # corrupt the checksum of the signature member's header (after manifest and payload)
    offset = raw.index(b"signatures/")
    raw[offset - 0 + 148 : offset + 156] = b"99999999"
    with pytest.raises(ArchiveError) as info:
        read_pack(_pack_file(tmp_path, g.gzip_bytes(bytes(raw))))
    assert info.value.code == "archive.trailing_data"


def test_missing_end_of_archive_marker_is_refused(tmp_path):
    manifest = g.manifest_dict()
    raw = g.tar_bytes(g.pack_members(manifest, g.payload_map(manifest, [g.NOTES])))
    end = len(raw.rstrip(b"\0"))
    end += -end % 512
    with pytest.raises(ArchiveError) as info:
        read_pack(_pack_file(tmp_path, g.gzip_bytes(raw[:end])))
    assert info.value.code == "archive.corrupt"


def test_limits_are_configurable(tmp_path):
    path = _write(tmp_path)
    with pytest.raises(LimitExceededError) as info:
        read_pack(path, limits=ReadLimits(max_manifest_bytes=10))
    assert info.value.code == "archive.limit.manifest_size"
    with pytest.raises(LimitExceededError) as info:
        read_pack(path, limits=ReadLimits(max_compression_ratio=1, ratio_grace_bytes=0))
    assert info.value.code == "archive.limit.compression_ratio"


def test_gnu_long_name_over_the_header_limit_is_refused(tmp_path):
    manifest = g.manifest_dict()
    members = [
        g.file_member("manifest.json", g.canonical_bytes(manifest)),
        g.file_member("payloads/notes/" + "n" * 300, b"x"),
    ]
    data = g.gzip_bytes(g.tar_bytes(members, fmt=tarfile.GNU_FORMAT))
    with pytest.raises(LimitExceededError) as info:
        read_pack(_pack_file(tmp_path, data), limits=ReadLimits(max_header_bytes=100))
    assert info.value.code == "archive.limit.header_size"


def test_sparse_and_unknown_member_types_are_refused(tmp_path):
    for kind in (tarfile.CONTTYPE, b"Z"):
        data = g._with_member((g.tarinfo("payloads/notes/odd", 0, kind), b""))
        with pytest.raises(ArchiveError) as info:
            read_pack(_pack_file(tmp_path, data))
        assert info.value.code == "archive.special_file"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("C:/evil", "archive.absolute_path"),
        ("\\evil", "archive.absolute_path"),
        ("payloads\\..\\x", "archive.path_traversal"),
        ("payloads//x", "archive.bad_member_name"),
        ("payloads/x/", "archive.bad_member_name"),
        ("payloads\\x", "archive.bad_member_name"),
    ],
)
def test_unsafe_member_names(tmp_path, name, code):
    with pytest.raises(ArchiveError) as info:
        read_pack(_pack_file(tmp_path, g._with_member(g.file_member(name, b"x"))))
    assert info.value.code == code


def test_is_regular_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "l").symlink_to(f)
    assert is_regular_file(f)
    assert not is_regular_file(tmp_path / "l")
    assert not is_regular_file(tmp_path / "missing")


def test_unreadable_source_is_reported_as_corrupt(tmp_path):
    with pytest.raises(ArchiveError) as info:
        read_pack(io.BytesIO(b""))
    assert info.value.code == "archive.corrupt"
    assert not os.listdir(tmp_path)
