"""Property tests for the MIP 2 reader: outside bytes give a MIPError code, never a crash.

Valid MIP 2 vectors (raw and zstd blobs, all memory types) are mutated:
bit flips anywhere (tar headers, blob bytes, zstd frames), truncation,
overwritten header bytes and reordered members. Every read extracts into a
sandboxed target and streams to a blob sink; a refusal must leave the sandbox
as it was and commit no blob whose bytes are not its digest. Writing then
reading random manifests' packs gives back the same payloads.
"""

import hashlib
import io
import tarfile

from hypothesis import given
from hypothesis import strategies as st

from protocol import Manifest, MIPError, read_pack, sign_manifest, write_pack
from protocol.conformance import generate as g
from protocol.conformance.vectors2 import manifest2

from .conftest import PROPERTY
from .test_pack2 import RecordingSink

SEEDS = [
    (g.VECTORS_DIR / f"{name}.memcube").read_bytes()
    for name in (
        "mip2-valid-raw-signed",
        "mip2-valid-all-types-zstd",
        "mip2-valid-chunked-memories",
        "mip2-valid-shared-blob",
    )
]


def _snapshot(root):
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"" for p in root.rglob("*")
    }


def _read(tmp_path_factory, data: bytes) -> None:
    sandbox = tmp_path_factory.mktemp("sandbox")
    (sandbox / "keep").write_text("keep")
    before = _snapshot(sandbox)
    sink = RecordingSink()
    code = ""
    try:
        read_pack(io.BytesIO(data), target=sandbox / "target", blobs=sink)
    except MIPError as exc:
        code = exc.code
    if code:
        assert "." in code
        assert _snapshot(sandbox) == before
    for digest, body in sink.committed.items():
        assert hashlib.sha256(body).hexdigest() == digest


@PROPERTY
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flips_anywhere_are_refused_with_a_code(tmp_path_factory, seed, flips):
    raw = bytearray(SEEDS[seed])
    used = len(raw.rstrip(b"\0")) or 1
    for pos, bit in flips:
        raw[pos % used] ^= 1 << bit
    _read(tmp_path_factory, bytes(raw))


@PROPERTY
@given(seed=st.sampled_from(range(len(SEEDS))), cut=st.integers(0, 10**6))
def test_truncation_is_refused_with_a_code(tmp_path_factory, seed, cut):
    used = len(SEEDS[seed].rstrip(b"\0"))
    _read(tmp_path_factory, SEEDS[seed][: cut % used])


@PROPERTY
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    block=st.integers(0, 10**4),
    offset=st.integers(0, 511),
    junk=st.binary(min_size=1, max_size=64),
)
def test_random_header_bytes_are_refused_with_a_code(tmp_path_factory, seed, block, offset, junk):
    raw = bytearray(SEEDS[seed])
    headers = [i for i in range(0, len(raw), 512) if raw[i : i + 1] not in (b"", b"\0")]
    start = headers[block % len(headers)] + offset
    raw[start : start + len(junk)] = junk
    _read(tmp_path_factory, bytes(raw[: len(SEEDS[seed])]))


@PROPERTY
@given(seed=st.sampled_from(range(len(SEEDS))), order=st.randoms(use_true_random=False))
def test_reordered_members_are_refused_or_read_identically(tmp_path_factory, seed, order):
    with tarfile.open(fileobj=io.BytesIO(SEEDS[seed])) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    shuffled = list(members)
    order.shuffle(shuffled)
    data = g.tar_bytes(shuffled)
    try:
        pack = read_pack(io.BytesIO(data))
    except MIPError:
        assert shuffled != members
        return
    assert shuffled == members and pack.manifest_bytes == members[0][1]


LINE = st.fixed_dictionaries(
    {
        "id": st.text("abcdefghij0123456789", min_size=1, max_size=12),
        "text": st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200),
    }
)


@PROPERTY
@given(
    cubes=st.lists(st.lists(LINE, max_size=20, unique_by=lambda r: r["id"]), min_size=1, max_size=4)
)
def test_write_then_read_gives_back_every_payload(tmp_path_factory, cubes):
    bodies = [g.memories_jsonl(records) for records in cubes]
    data = manifest2(*(g.plaintext_cube(f"c{i}", body) for i, body in enumerate(bodies)))
    manifest = Manifest.from_dict(data)
    out = tmp_path_factory.mktemp("rt") / "p.memcube"
    files = dict(zip([p.path for p in manifest.payloads()], bodies, strict=True))
    write_pack(out, manifest, files, [sign_manifest(manifest.canonical_bytes(), g.KEY_A)])
    target = out.parent / "x"
    pack = read_pack(out, target=target)
    assert pack.manifest_bytes == manifest.canonical_bytes()
    for ref in pack.manifest.payloads():
        assert pack.payload_path(ref).read_bytes() == files[ref.path]
