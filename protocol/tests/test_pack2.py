"""MIP 2 containers: writing, reading, the blob sink, the builder and migration."""

import hashlib
import io
import tarfile

import pytest

from protocol import (
    ArchiveError,
    BlobEntry,
    IntegrityError,
    Manifest,
    MIPError,
    migrate_pack,
    pack_directory,
    read_pack,
    select_blobs,
    sign_pack,
    write_pack,
)
from protocol.archive import container_major
from protocol.conformance import generate as g
from protocol.conformance.vectors2 import blob_pack_members, manifest2, zstd_frame

from .conftest import write_source
from .test_chunking import big_memories


class RecordingSink:
    def __init__(self, have=()):
        self.have = set(have)
        self.committed: dict[str, bytes] = {}
        self.aborted: list[str] = []
        self.opened: list[str] = []

    def open_blob(self, entry: BlobEntry):
        self.opened.append(entry.sha256)
        if entry.sha256 in self.have:
            return None
        return _Writer(self, entry)


class _Writer:
    def __init__(self, sink, entry):
        self.sink, self.entry, self.buf = sink, entry, io.BytesIO()

    def write(self, data):
        return self.buf.write(data)

    def commit(self):
        self.sink.committed[self.entry.sha256] = self.buf.getvalue()

    def abort(self):
        self.sink.aborted.append(self.entry.sha256)


def _members(path):
    with tarfile.open(path) as tar:
        return [(m.name, m.size) for m in tar.getmembers()]


@pytest.fixture
def big_source(tmp_path):
    big, kv, weights = big_memories(6 * 1024 * 1024), g.kv_cache(), g.lora_weights()
    manifest = g.manifest_dict(
        g.plaintext_cube(body=big),
        g.activation_cube(kv),
        g.parameter_cube(g.LORA_CONFIG, weights),
    )
    bodies = [big, kv, g.LORA_CONFIG, weights]
    return write_source(tmp_path / "src", manifest, g.payload_map(manifest, bodies)), big


def test_a_2x_pack_is_a_plain_tar_of_manifest_sorted_blobs_and_signatures(tmp_path, big_source):
    source, _ = big_source
    pack = pack_directory(source, tmp_path / "p.memcube", keys=[g.KEY_A], mip_version="2.0")
    raw = (tmp_path / "p.memcube").read_bytes()
    assert container_major(raw) == 2 and raw[:2] != b"\x1f\x8b"
    names = [name for name, _ in _members(tmp_path / "p.memcube")]
    blobs = [n for n in names if n.startswith("blobs/")]
    assert names[0] == "manifest.json" and names[-1] == f"signatures/{g.KEY_A.keyid}.json"
    assert blobs == sorted(blobs) and len(names) == len(blobs) + 2
    kinds = {p.sha256: p.media_type for p in pack.manifest.payloads()}
    for name in blobs:
        digest = name.removeprefix("blobs/sha256/").removesuffix(".zst")
        if kinds[digest].endswith("safetensors"):
            assert not name.endswith(".zst")  # tensors are raw
    assert any(n.endswith(".zst") for n in blobs)  # the memories chunks compress
    chunks = [p for p in pack.manifest.payloads() if p.media_type.endswith("jsonl")]
    assert len(chunks) > 1 and all(p.path.startswith("payloads/notes/memories.") for p in chunks)
    assert pack.manifest.mip_version == "2.0"


def test_writing_is_deterministic(tmp_path, big_source):
    source, _ = big_source
    a = pack_directory(source, tmp_path / "a.memcube", keys=[g.KEY_A], mip_version="2.0")
    b = pack_directory(source, tmp_path / "b.memcube", keys=[g.KEY_A], mip_version="2.0")
    assert a.file_sha256 == b.file_sha256
    assert (tmp_path / "a.memcube").read_bytes() == (tmp_path / "b.memcube").read_bytes()


def test_text_that_does_not_save_10_percent_is_stored_raw(tmp_path, monkeypatch):
    from protocol import _pack2_writer

    manifest = Manifest.from_dict(manifest2())
    digest = hashlib.sha256(g.NOTES).hexdigest()
    monkeypatch.setattr(_pack2_writer, "MAX_ZSTD_FRACTION", 0.0)
    write_pack(tmp_path / "raw.memcube", manifest, {manifest.payloads()[0].path: g.NOTES})
    assert _members(tmp_path / "raw.memcube")[1][0] == f"blobs/sha256/{digest}"
    monkeypatch.setattr(_pack2_writer, "MAX_ZSTD_FRACTION", 1.0)
    write_pack(tmp_path / "zst.memcube", manifest, {manifest.payloads()[0].path: g.NOTES})
    assert _members(tmp_path / "zst.memcube")[1][0] == f"blobs/sha256/{digest}.zst"
    for name in ("raw", "zst"):
        assert read_pack(tmp_path / f"{name}.memcube").manifest == manifest


def test_read_extracts_payload_paths_and_streams_blobs_to_the_sink(tmp_path, big_source):
    source, big = big_source
    pack_directory(source, tmp_path / "p.memcube", keys=[g.KEY_A], mip_version="2.0")
    sink = RecordingSink()
    pack = read_pack(tmp_path / "p.memcube", target=tmp_path / "x", blobs=sink)
    chunks = [p for p in pack.manifest.payloads() if p.media_type.endswith("jsonl")]
    assert b"".join(pack.payload_path(p).read_bytes() for p in chunks) == big
    assert set(sink.committed) == {p.sha256 for p in pack.manifest.payloads()}
    for digest, body in sink.committed.items():
        assert hashlib.sha256(body).hexdigest() == digest
    assert (tmp_path / "x" / "manifest.json").read_bytes() == pack.manifest_bytes


def test_a_sink_may_skip_blobs_it_has_but_they_are_still_checked(tmp_path, big_source):
    source, _ = big_source
    built = pack_directory(source, tmp_path / "p.memcube", mip_version="2.0")
    have = {b.sha256 for b in select_blobs(built.manifest, fingerprint=None)}
    sink = RecordingSink(have)
    read_pack(tmp_path / "p.memcube", blobs=sink)
    assert not have & set(sink.committed) and len(sink.opened) == len(set(sink.opened))
    # a tampered blob that the sink would skip is still refused
    manifest = manifest2()
    blobs = {hashlib.sha256(g.NOTES).hexdigest(): g.NOTES.replace(b"Paris", b"Lyon!")}
    bad = tmp_path / "bad.memcube"
    bad.write_bytes(g.tar_bytes(blob_pack_members(manifest, blobs)))
    with pytest.raises(IntegrityError) as info:
        read_pack(bad, blobs=RecordingSink(set(blobs)))
    assert info.value.code == "integrity.digest_mismatch"


def test_a_refused_blob_is_aborted_never_committed(tmp_path):
    manifest = manifest2()
    digest = hashlib.sha256(g.NOTES).hexdigest()
    bomb = {digest: g.NOTES}
    members = blob_pack_members(
        manifest, bomb, zst=[digest], frames={digest: zstd_frame(bytes(1 << 24))}
    )
    path = tmp_path / "bomb.memcube"
    path.write_bytes(g.tar_bytes(members))
    sink = RecordingSink()
    with pytest.raises(IntegrityError) as info:
        read_pack(path, blobs=sink, target=tmp_path / "out")
    assert info.value.code == "integrity.size_mismatch"
    assert sink.aborted == [digest] and not sink.committed
    assert not (tmp_path / "out").exists()


def test_both_versions_read_into_the_same_pack_shape(tmp_path, all_types_source):
    one = pack_directory(all_types_source, tmp_path / "1.memcube", keys=[g.KEY_A])
    two = pack_directory(
        all_types_source, tmp_path / "2.memcube", keys=[g.KEY_A], mip_version="2.0"
    )
    assert one.manifest.major == 1 and two.manifest.major == 2
    strip = lambda m: [(p.path, p.sha256) for p in m.payloads()]  # noqa: E731
    assert strip(one.manifest) == strip(two.manifest)  # small files are not chunked
    with open(tmp_path / "2.memcube", "rb") as fh:
        assert read_pack(fh).file_sha256 == two.file_sha256


def test_migrate_rewrites_a_1x_pack_as_2x_signed_by_the_new_key(tmp_path, big_source):
    source, _ = big_source
    pack_directory(source, tmp_path / "old.memcube", keys=[g.KEY_A])
    new = migrate_pack(tmp_path / "old.memcube", tmp_path / "new.memcube", key=g.KEY_B)
    assert new.manifest.mip_version == "2.0"
    assert [s.keyid for s in new.signatures] == [g.KEY_B.keyid]
    built = pack_directory(source, tmp_path / "b.memcube", mip_version="2.0")
    assert new.manifest_bytes == built.manifest_bytes
    again = migrate_pack(tmp_path / "new.memcube", tmp_path / "new.memcube", key=g.KEY_A)
    assert again.manifest_bytes == new.manifest_bytes
    assert sorted(s.keyid for s in again.signatures) == sorted((g.KEY_A.keyid, g.KEY_B.keyid))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sign_pack_keeps_a_2x_pack_2x(tmp_path, all_types_source):
    pack_directory(all_types_source, tmp_path / "p.memcube", mip_version="2.0")
    signed = sign_pack(tmp_path / "p.memcube", [g.KEY_A])
    assert signed.manifest.major == 2 and len(signed.signatures) == 1


def test_writer_refuses_a_1x_manifest_in_a_2x_container(tmp_path):
    from protocol._pack2_writer import write_pack2

    manifest = Manifest.from_dict(g.manifest_dict())
    with pytest.raises(ArchiveError) as info:
        write_pack2(tmp_path / "x", manifest, {manifest.payloads()[0].path: g.NOTES})
    assert info.value.code == "archive.version_mismatch"


def test_builder_can_write_another_1x_minor(tmp_path, plaintext_source):
    pack = pack_directory(plaintext_source, tmp_path / "p.memcube", mip_version="1.1")
    assert pack.manifest.mip_version == "1.1"


def test_reading_a_non_seekable_stream_works(tmp_path, all_types_source):
    pack_directory(all_types_source, tmp_path / "p.memcube", mip_version="2.0")

    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self.data.read(min(len(b), 777))
            b[: len(chunk)] = chunk
            return len(chunk)

    pack = read_pack(Pipe((tmp_path / "p.memcube").read_bytes()))  # type: ignore[arg-type]
    assert pack.manifest.major == 2
    with pytest.raises(MIPError):
        read_pack(io.BytesIO(b""))
