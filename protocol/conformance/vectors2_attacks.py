"""MIP 2 conformance vectors: attacks on member order, container version, names and limits.

Each differs from the valid one-blob pack of
:func:`protocol.conformance.vectors2.base_pack` in one way; together with
:mod:`protocol.conformance.vectors2` they repeat every container attack of
the MIP 1 vectors on the MIP 2 layout (SPEC section 14.6 maps the codes).

Not here: library code; valid packs and blob attacks (:mod:`protocol.conformance.vectors2`).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from protocol.canonical import canonical_bytes
from protocol.conformance.fixtures import (
    KEY_A,
    KEY_B,
    NOTES,
    PICKLE_BYTES,
    Member,
    Vector,
    activation_cube,
    file_member,
    gzip_bytes,
    manifest_dict,
    memories_jsonl,
    pack_members,
    payload_map,
    plaintext_cube,
    tar_bytes,
    tarinfo,
)
from protocol.conformance.vectors2 import (
    base_pack,
    blob_bodies,
    blob_pack_members,
    insert_member,
    manifest2,
    mip2_vectors,
)
from protocol.conformance.vectors2_kv import kv_chunk_vectors
from protocol.signing import sign_manifest

__all__ = ["all_mip2_vectors"]


def all_mip2_vectors() -> list[Vector]:
    return [*mip2_vectors(), *kv_chunk_vectors(), *_order_and_version_vectors(),
            *_path_and_limit_vectors()]  # fmt: skip


def _order_and_version_vectors() -> list[Vector]:
    manifest, blobs, good = base_pack()
    two = manifest2(
        plaintext_cube("a"), plaintext_cube("b", memories_jsonl([{"id": "x", "text": "y"}]))
    )
    two_members = blob_pack_members(
        two, blob_bodies(two, [NOTES, memories_jsonl([{"id": "x", "text": "y"}])])
    )
    v: list[Vector] = []

    def add(name: str, description: str, data: bytes, expect: str, **kw: Any) -> None:
        kw.setdefault("trusted", (KEY_A,))
        v.append(Vector(f"mip2-invalid-{name}", description, data, expect, **kw))

    add(
        "blobs-out-of-order",
        "Blobs not sorted by digest",
        tar_bytes([two_members[0], two_members[2], two_members[1], two_members[3]]),
        "archive.member_order",
    )
    add(
        "blob-after-signature",
        "A blob after the signatures",
        tar_bytes([good[0], good[2], good[1]]),
        "archive.member_order",
    )
    signed2 = blob_pack_members(manifest, blobs, (KEY_A, KEY_B))
    add(
        "signatures-out-of-order",
        "Signatures not sorted by key id",
        tar_bytes([signed2[0], signed2[1], signed2[3], signed2[2]]),
        "archive.member_order",
    )
    add(
        "manifest-not-first",
        "The blob comes before manifest.json",
        tar_bytes([good[1], good[0], good[2]]),
        "archive.manifest_not_first",
    )
    add(
        "2x-in-gzip",
        "A MIP 2 pack (manifest and blobs) gzip'd like MIP 1",
        gzip_bytes(tar_bytes(good)),
        "archive.version_mismatch",
    )
    one = manifest_dict()
    add(
        "1x-in-plain-tar",
        "A MIP 1 pack (1.0 manifest and payloads) in a plain, uncompressed tar",
        tar_bytes(pack_members(one, payload_map(one, [NOTES]), (KEY_A,))),
        "archive.version_mismatch",
    )
    add(
        "trailing-data",
        "Non-zero bytes after the end of the tar archive",
        tar_bytes(good) + b"HIDDEN" + bytes(506),
        "archive.trailing_data",
    )
    full = tar_bytes(good)
    cut = full.index(NOTES) + 10
    add("truncated", "The tar stream is cut inside the blob", full[:cut], "archive.corrupt")
    add("not-a-tar", "Neither gzip nor tar", b"PK\x03\x04 not a pack" * 40, "archive.corrupt")
    add("empty-archive", "A tar archive with no member", tar_bytes([]), "archive.missing_manifest")
    add(
        "manifest-not-canonical",
        "manifest.json is a valid 2.0 manifest but pretty-printed",
        tar_bytes([file_member("manifest.json", _pretty(manifest)), good[1]]),
        "manifest.not_canonical",
    )
    conflict = copy.deepcopy(manifest2(plaintext_cube("a"), plaintext_cube("b")))
    conflict["cubes"][1]["payloads"][0]["size"] += 1
    add(
        "blob-two-sizes",
        "The manifest names one digest with two sizes",
        tar_bytes([file_member("manifest.json", canonical_bytes(conflict)), good[1]]),
        "manifest.blob_conflict",
    )
    unknown = copy.deepcopy(manifest)
    unknown["cubes"][0]["payloads"][0]["media_type"] = "application/x-unknown"
    add(
        "unknown-media-type",
        "A payload with a media type MIP does not define",
        tar_bytes([file_member("manifest.json", canonical_bytes(unknown)), good[1]]),
        "manifest.schema",
    )
    v.append(
        Vector(
            "mip2-manifest-invalid-blob-conflict",
            "A standalone 2.0 manifest naming one digest with two sizes",
            canonical_bytes(conflict),
            "manifest.blob_conflict",
            kind="manifest",
        )
    )
    v.append(
        Vector(
            "mip2-manifest-valid",
            "A standalone 2.0 manifest",
            canonical_bytes(manifest),
            "ok",
            kind="manifest",
        )
    )
    return v


def _pretty(value: dict[str, Any]) -> bytes:
    return json.dumps(value, indent=2).encode()


def _path_and_limit_vectors() -> list[Vector]:
    _, blobs, good = base_pack()
    (digest,) = blobs
    v: list[Vector] = []

    def add(name: str, description: str, data: bytes, expect: str, **kw: Any) -> None:
        kw.setdefault("trusted", (KEY_A,))
        v.append(Vector(f"mip2-invalid-{name}", description, data, expect, **kw))

    add(
        "absolute-path",
        "A blob member named with an absolute path",
        insert_member(file_member(f"/blobs/sha256/{digest}", NOTES)),
        "archive.absolute_path",
    )
    add(
        "path-traversal",
        "A member name climbing out with '..'",
        insert_member(file_member("blobs/sha256/../../evil", b"x")),
        "archive.path_traversal",
    )
    add(
        "non-normal-name",
        "A blob member name with an empty component",
        insert_member(file_member(f"blobs//sha256/{digest}", NOTES)),
        "archive.bad_member_name",
    )
    add(
        "blob-name-newline",
        "A blob member name with a newline after the digest (a second spelling of the name)",
        tar_bytes([good[0], file_member(f"blobs/sha256/{digest}\n", NOTES), good[2]]),
        "archive.unlisted_member",
    )
    add(
        "signature-name-newline",
        "A signature member name with a newline after '.json'",
        tar_bytes([good[0], good[1], file_member(good[2][0].name + "\n", good[2][1] or b"")]),
        "archive.unlisted_member",
    )
    link = tarinfo(f"blobs/sha256/{digest}", kind=b"2")
    link.linkname = "/etc/passwd"
    add(
        "symlink-blob",
        "The blob member is a symbolic link",
        tar_bytes([good[0], (link, None), good[2]]),
        "archive.symlink",
    )
    hard = tarinfo(f"blobs/sha256/{digest}", kind=b"1")
    hard.linkname = "manifest.json"
    add(
        "hardlink-blob",
        "The blob member is a hard link",
        tar_bytes([good[0], (hard, None), good[2]]),
        "archive.hardlink",
    )
    add(
        "directory-member",
        "A directory entry",
        insert_member((tarinfo("blobs/sha256", kind=b"5"), None), at=1),
        "archive.directory_member",
    )
    add(
        "fifo-member",
        "A FIFO member",
        insert_member((tarinfo(f"blobs/sha256/{digest}", kind=b"6"), None), at=1),
        "archive.special_file",
    )
    add(
        "too-many-members",
        "More members than the reader's limit",
        tar_bytes(good),
        "archive.limit.members",
        limits={"max_members": 2},
    )
    add(
        "manifest-too-large",
        "manifest.json larger than the reader's limit",
        tar_bytes(good),
        "archive.limit.manifest_size",
        limits={"max_manifest_bytes": 100},
    )
    add(
        "declared-total-too-large",
        "The manifest declares more blob bytes than the reader's limit",
        tar_bytes(good),
        "archive.limit.total_size",
        limits={"max_total_bytes": 100},
    )
    add(
        "pack-too-large",
        "The file is larger than the reader's limit",
        tar_bytes(good),
        "archive.limit.pack_size",
        limits={"max_pack_bytes": 4096},
    )
    big = tarinfo(f"blobs/sha256/{digest}", len(NOTES))
    big.pax_headers = {"comment": "x" * 5000}
    add(
        "pax-header-too-large",
        "A PAX extended header larger than the reader's limit",
        tar_bytes([good[0], (big, NOTES), good[2]]),
        "archive.limit.header_size",
        limits={"max_header_bytes": 1024},
    )
    sig = good[2]
    add(
        "signature-name-mismatch",
        "signatures/<keyid>.json holds another key's signature",
        tar_bytes(
            [good[0], good[1], (tarinfo(f"signatures/{KEY_B.keyid}.json", sig[0].size), sig[1])]
        ),
        "archive.signature_name_mismatch",
    )
    add(
        "untrusted-signer",
        "Signed by a key the reader does not trust",
        tar_bytes(good),
        "signature.untrusted",
        trusted=(KEY_B,),
    )
    v += _dsse_vectors(good)
    tensor = manifest2(activation_cube(PICKLE_BYTES))
    add(
        "pickle-blob",
        "A KV-cache blob that is a pickle",
        tar_bytes(blob_pack_members(tensor, blob_bodies(tensor, [PICKLE_BYTES]))),
        "payload.pickle_forbidden",
    )
    bad_line = b'{"id": "m1", "text": \n'
    bad = manifest2(plaintext_cube(body=bad_line))
    add(
        "bad-jsonl-zstd",
        "A memories blob (zstd) with a line that is not JSON",
        tar_bytes(
            blob_pack_members(
                bad, blob_bodies(bad, [bad_line]), zst=list(blob_bodies(bad, [bad_line]))
            )
        ),
        "payload.bad_jsonl",
    )
    return v


def _dsse_vectors(good: list[Member]) -> list[Vector]:
    """Envelopes that are well-formed JSON but not a valid signature of this manifest."""
    body = good[0][1]
    assert body is not None
    name = f"signatures/{KEY_A.keyid}.json"
    other = manifest2(version="9.9.9")
    other_body = canonical_bytes(other)
    elsewhere = sign_manifest(other_body, KEY_A)
    mine = sign_manifest(body, KEY_A)
    envelope = json.loads(mine.envelope_bytes(body))
    forged = {**envelope, "signatures": [{"keyid": KEY_A.keyid, "sig": _b64(bytes(64))}]}
    wrong_type = {**envelope, "payloadType": "application/json"}

    def pack(sig_body: bytes) -> bytes:
        return tar_bytes([good[0], good[1], file_member(name, sig_body)])

    def vector(vname: str, description: str, data: bytes, expect: str) -> Vector:
        return Vector(f"mip2-invalid-{vname}", description, data, expect, trusted=(KEY_A,))

    return [
        vector(
            "dsse-statement-mismatch",
            "A DSSE envelope validly signed, over the statement of another manifest",
            pack(elsewhere.envelope_bytes(other_body)),
            "signature.statement_mismatch",
        ),
        vector(
            "dsse-forged",
            "A DSSE envelope over the right statement whose signature does not verify",
            pack(canonical_bytes(forged)),
            "signature.invalid",
        ),
        vector(
            "dsse-payload-type",
            "A DSSE envelope whose payloadType is not in-toto",
            pack(canonical_bytes(wrong_type)),
            "signature.unsupported_algorithm",
        ),
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
