"""Property tests: outside data never causes an unhandled error or a stray write.

Archives are mutated at the tar level (bit flips, truncation, overwritten
header bytes, reordered and renamed members) and re-compressed, so that the
mutations reach the tar and content parsers instead of stopping at the gzip
CRC; raw gzip bytes are flipped too. Manifests get random JSON, deleted
fields and changed types. Every read extracts into a target inside a sandbox
whose other contents are compared before and after.
"""

import contextlib
import copy
import gzip
import io
import json
import tarfile
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

from protocol import (
    Manifest,
    ManifestError,
    MIPError,
    PayloadError,
    PublicKey,
    Signature,
    SignatureError,
    iter_memory_records,
    parse_ref,
    read_pack,
    read_safetensors_header,
)
from protocol.conformance import generate as g

from .conftest import PROPERTY

SEEDS = [
    (g.VECTORS_DIR / f"{name}.memcube").read_bytes()
    for name in ("valid-plaintext-signed", "valid-all-memory-types", "valid-long-path-pax")
]


def _tar(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        return gz.read()


TARS = [_tar(s) for s in SEEDS]


def _members(raw: bytes) -> list[g.Member]:
    out: list[g.Member] = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar.getmembers():
            handle = tar.extractfile(m)
            out.append((m, handle.read() if handle else None))
    return out


MEMBERS = [_members(t) for t in TARS]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): (
            p.read_bytes() if p.is_file() and not p.is_symlink() else b"<other>"
        )
        for p in sorted(root.rglob("*"))
    }


def _read_in_sandbox(tmp_path_factory, data: bytes) -> None:
    sandbox = tmp_path_factory.mktemp("sandbox")
    (sandbox / "sentinel").write_text("keep")
    (sandbox / "sub").mkdir()
    (sandbox / "sub" / "file").write_text("keep")
    pack = sandbox / "in.memcube"
    pack.write_bytes(data)
    before = _snapshot(sandbox)
    target = sandbox / "sub" / "target"
    try:
        read_pack(pack, target=target)
    except MIPError:
        assert _snapshot(sandbox) == before
        return
    after = _snapshot(sandbox)
    assert {k: v for k, v in after.items() if not k.startswith("sub/target")} == before


@PROPERTY
@given(
    seed=st.sampled_from(range(len(TARS))),
    flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flips_in_the_tar_stream_never_crash_or_escape(tmp_path_factory, seed, flips):
    raw = bytearray(TARS[seed])
    for pos, bit in flips:
        raw[pos % len(raw)] ^= 1 << bit
    _read_in_sandbox(tmp_path_factory, g.gzip_bytes(bytes(raw)))


@PROPERTY
@given(seed=st.sampled_from(range(len(SEEDS))), pos=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_bit_flips_in_the_gzip_stream_never_crash(tmp_path_factory, seed, pos, bit):
    raw = bytearray(SEEDS[seed])
    raw[pos % len(raw)] ^= 1 << bit
    _read_in_sandbox(tmp_path_factory, bytes(raw))


@PROPERTY
@given(seed=st.sampled_from(range(len(TARS))), cut=st.integers(0, 10**6), gz_cut=st.booleans())
def test_truncation_never_crashes(tmp_path_factory, seed, cut, gz_cut):
    if gz_cut:
        data = SEEDS[seed][: cut % len(SEEDS[seed])]
    else:
        data = g.gzip_bytes(TARS[seed][: cut % len(TARS[seed])])
    _read_in_sandbox(tmp_path_factory, data)


@PROPERTY
@given(
    seed=st.sampled_from(range(len(TARS))),
    block=st.integers(0, 10**4),
    offset=st.integers(0, 511),
    junk=st.binary(min_size=1, max_size=64),
)
def test_random_tar_header_bytes_never_crash(tmp_path_factory, seed, block, offset, junk):
    raw = bytearray(TARS[seed])
    headers = [i for i in range(0, len(raw), 512) if raw[i : i + 1] not in (b"", b"\0")]
    start = headers[block % len(headers)] + offset
    raw[start : start + len(junk)] = junk
    _read_in_sandbox(tmp_path_factory, g.gzip_bytes(bytes(raw[: len(TARS[seed])])))


NAMES = st.one_of(
    st.sampled_from(
        [
            "/abs",
            "../up",
            "payloads/../x",
            "payloads/notes/memories.jsonl",
            "manifest.json",
            "signatures/x.json",
            "payloads/notes",
            "a//b",
            "C:/x",
            "payloads/NOTES/MEMORIES.JSONL",
        ]
    ),
    st.text(min_size=1, max_size=40),
)


@PROPERTY
@given(
    seed=st.sampled_from(range(len(MEMBERS))),
    order=st.randoms(use_true_random=False),
    renames=st.lists(st.tuples(st.integers(0, 20), NAMES), max_size=3),
    types=st.lists(
        st.tuples(
            st.integers(0, 20),
            st.sampled_from(
                [
                    tarfile.SYMTYPE,
                    tarfile.LNKTYPE,
                    tarfile.DIRTYPE,
                    tarfile.FIFOTYPE,
                    tarfile.CHRTYPE,
                    tarfile.REGTYPE,
                ]
            ),
        ),
        max_size=2,
    ),
    drop=st.lists(st.integers(0, 20), max_size=2),
)
def test_reordered_renamed_retyped_members_never_crash_or_escape(
    tmp_path_factory, seed, order, renames, types, drop
):
    members = [(copy.copy(info), body) for info, body in MEMBERS[seed]]
    if order.random() < 0.5:
        order.shuffle(members)
    for index, name in renames:
        members[index % len(members)][0].name = name
    for index, kind in types:
        info = members[index % len(members)][0]
        info.type = kind
        info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    for index in drop:
        if len(members) > 1:
            members.pop(index % len(members))
    fixed = [(m, b if m.isreg() else None) for m, b in members]
    for m, _ in fixed:
        if not m.isreg():
            m.size = 0
    try:
        data = g.gzip_bytes(g.tar_bytes(fixed, errors="surrogateescape"))
    except (ValueError, UnicodeError):
        assume(False)
        return
    _read_in_sandbox(tmp_path_factory, data)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPERTY
@given(value=JSON)
def test_random_json_manifests_raise_only_manifest_errors(value):
    with contextlib.suppress(ManifestError):
        Manifest.from_dict(value)
    with contextlib.suppress(ManifestError):
        Manifest.from_bytes(json.dumps(value).encode())


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


BASE = g.manifest_dict(
    g.plaintext_cube(
        governance={"access": {"visibility": "public"}},
        behaviour={"priority": 0.5},
        provenance={"derived_from": []},
    ),
    g.activation_cube(b"abc"),
    g.parameter_cube(b"{}", b"w"),
    authors=[{"name": "A"}],
)
PATHS = [p for p in _paths(BASE) if p]


@PROPERTY
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["delete", "replace"]), value=JSON)
def test_field_deletions_and_type_changes_give_manifest_errors_or_lossless_manifests(
    path, action, value
):
    data = copy.deepcopy(BASE)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        manifest = Manifest.from_dict(copy.deepcopy(data))
    except ManifestError:
        return
    assert manifest.to_dict() == data


@PROPERTY
@given(
    extras=st.dictionaries(st.from_regex(r"\Ax_[a-z]{1,8}\Z"), JSON, max_size=3),
    where=st.sampled_from(PATHS),
)
def test_unknown_fields_anywhere_survive_a_round_trip(extras, where):
    data = copy.deepcopy(BASE)
    target = data
    for key in where:
        if not isinstance(target[key], (dict, list)):
            break
        target = target[key]
    if isinstance(target, dict):
        target.update(extras)
    try:
        manifest = Manifest.from_dict(copy.deepcopy(data))
    except ManifestError:
        return
    assert manifest.to_dict() == data


@PROPERTY
@given(data=st.binary(max_size=200))
def test_random_bytes_as_payloads_signatures_keys_raise_only_their_errors(data):
    for call, error in (
        (lambda: list(iter_memory_records(io.BytesIO(data))), PayloadError),
        (lambda: read_safetensors_header(io.BytesIO(data), len(data)), PayloadError),
        (lambda: Signature.from_bytes(data), SignatureError),
        (lambda: PublicKey.load(data), SignatureError),
    ):
        with contextlib.suppress(error):
            call()


@PROPERTY
@given(text=st.text(max_size=40))
def test_random_references_raise_only_manifest_errors(text):
    with contextlib.suppress(ManifestError):
        parse_ref(text)
