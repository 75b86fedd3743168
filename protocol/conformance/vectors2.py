"""The MIP 2 conformance vectors: packs of blobs, valid and invalid (SPEC section 14).

Built like the MIP 1 vectors (:mod:`protocol.conformance.generate`), from the
fixed inputs of :mod:`protocol.conformance.fixtures`: valid packs from the
blob layout with each blob's storage (raw or one zstd frame) chosen per
vector, invalid ones differing from a valid pack in exactly one way. The
zstd frames are written by the pinned ``zstandard`` library with fixed
parameters. Every attack of the MIP 1 vectors that concerns the container is
repeated here on the MIP 2 layout (names, links, order, limits, trailing
data, truncation), next to the attacks that only blobs allow (a blob longer
than declared, a decompression bomb, a blob stored twice or not at all, a
compressed tensor, a container of the wrong major).

Not here: library code; the MIP 1 vectors; the attacks on order, version,
names and limits (:mod:`protocol.conformance.vectors2_attacks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import zstandard

from protocol.canonical import canonical_bytes
from protocol.conformance.fixtures import (
    KEY_A,
    LORA_CONFIG,
    NOTES,
    Member,
    Vector,
    activation_cube,
    file_member,
    kv_cache,
    lora_weights,
    manifest_dict,
    memories_jsonl,
    parameter_cube,
    payload_map,
    plaintext_cube,
    tar_bytes,
)
from protocol.signing import SigningKey, sign_manifest

__all__ = [
    "base_pack",
    "blob_bodies",
    "blob_pack_bytes",
    "blob_pack_members",
    "insert_member",
    "manifest2",
    "mip2_vectors",
    "zstd_frame",
]


def zstd_frame(data: bytes) -> bytes:
    """One zstd frame of ``data`` with the MIP 2 writer's parameters."""
    return zstandard.ZstdCompressor(
        level=9, write_checksum=False, write_content_size=True, write_dict_id=False
    ).compress(data)


def manifest2(*cubes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return manifest_dict(*cubes, **{"mip_version": "2.0", **fields})


def blob_bodies(manifest: dict[str, Any], bodies: Iterable[bytes]) -> dict[str, bytes]:
    """Digest -> content for the manifest's payloads, in manifest order."""
    found: dict[str, bytes] = {}
    for body in payload_map(manifest, bodies).values():
        found.setdefault(hashlib.sha256(body).hexdigest(), body)
    return found


def blob_pack_members(
    manifest: dict[str, Any],
    blobs: Mapping[str, bytes],
    keys: Iterable[SigningKey] = (KEY_A,),
    *,
    zst: Iterable[str] = (),
    frames: Mapping[str, bytes] | None = None,
) -> list[Member]:
    """Members of a well-formed MIP 2 pack; digests in ``zst`` stored as zstd frames."""
    body = canonical_bytes(manifest)
    compressed = set(zst)
    members = [file_member("manifest.json", body)]
    for digest in sorted(blobs):
        if digest in compressed:
            frame = (frames or {}).get(digest) or zstd_frame(blobs[digest])
            members.append(file_member(f"blobs/sha256/{digest}.zst", frame))
        else:
            members.append(file_member(f"blobs/sha256/{digest}", blobs[digest]))
    sigs = sorted((sign_manifest(body, k) for k in keys), key=lambda s: s.keyid)
    members += [file_member(f"signatures/{s.keyid}.json", s.envelope_bytes(body)) for s in sigs]
    return members


def blob_pack_bytes(
    manifest: dict[str, Any],
    bodies: Iterable[bytes],
    keys: Iterable[SigningKey] = (KEY_A,),
    *,
    zst_types: Iterable[str] = (),
) -> bytes:
    """A valid MIP 2 pack; blobs of the media types in ``zst_types`` stored as zstd frames."""
    blobs = blob_bodies(manifest, bodies)
    types = {p["sha256"]: p["media_type"] for c in manifest["cubes"] for p in c["payloads"]}
    zst = [d for d in blobs if types[d] in set(zst_types)]
    return tar_bytes(blob_pack_members(manifest, blobs, keys, zst=zst))


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


TEXT = ("application/vnd.mip.memories+jsonl", "application/vnd.mip.lora-config+json")
BIG_NOTES = memories_jsonl(
    {"id": f"n{i}", "text": f"memory number {i} " * 8, "tags": ["bulk"]} for i in range(400)
)


def _valid() -> list[Vector]:
    kv, weights = kv_cache(), lora_weights()
    all_types = manifest2(
        plaintext_cube(), activation_cube(kv), parameter_cube(LORA_CONFIG, weights)
    )
    bodies = [NOTES, kv, LORA_CONFIG, weights]
    shared = manifest2(plaintext_cube("a"), plaintext_cube("b"))
    cut = BIG_NOTES.index(b"\n", 20000) + 1
    chunks = [BIG_NOTES[:cut], BIG_NOTES[cut:]]
    chunked = plaintext_cube("bulk", chunks[0])
    chunked["payloads"] = [
        {
            "path": f"payloads/bulk/memories.{i:04d}.jsonl",
            "media_type": TEXT[0],
            "size": len(c),
            "sha256": _digest(c),
        }
        for i, c in enumerate(chunks)
    ]
    return [
        Vector(
            "mip2-valid-raw-signed",
            "A MIP 2 pack, one raw memories blob, signed by one trusted key",
            blob_pack_bytes(manifest2(), [NOTES]),
            "ok",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-valid-all-types-zstd",
            "Plaintext, KV cache and LoRA cubes; the text blobs as zstd frames, tensors raw",
            blob_pack_bytes(all_types, bodies, zst_types=TEXT),
            "ok",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-valid-legacy-signature",
            "A MIP 2.0 pack signed in the detached MIP 1 form (before DSSE): still read",
            tar_bytes(_legacy_signed()),
            "ok",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-valid-unsigned",
            "A MIP 2 pack with no signature, read without trust",
            blob_pack_bytes(manifest2(), [NOTES], ()),
            "ok",
        ),
        Vector(
            "mip2-valid-shared-blob",
            "Two cubes whose payloads have the same content: one blob, stored once",
            blob_pack_bytes(shared, [NOTES, NOTES]),
            "ok",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-valid-chunked-memories",
            "A memories file split at a record boundary into two chunk payloads (zstd)",
            blob_pack_bytes(manifest2(chunked), chunks, zst_types=TEXT),
            "ok",
            trusted=(KEY_A,),
        ),
    ]


def _legacy_signed() -> list[Member]:
    manifest = manifest2()
    members = blob_pack_members(manifest, blob_bodies(manifest, [NOTES]), ())
    sig = KEY_A.sign(canonical_bytes(manifest))
    return [*members, file_member(f"signatures/{sig.keyid}.json", sig.to_bytes())]


def base_pack() -> tuple[dict[str, Any], dict[str, bytes], list[Member]]:
    manifest = manifest2()
    blobs = blob_bodies(manifest, [NOTES])
    return manifest, blobs, blob_pack_members(manifest, blobs)


def insert_member(member: Member, at: int = 2) -> bytes:
    members = base_pack()[2]
    members.insert(at, member)
    return tar_bytes(members)


def blob_vectors() -> list[Vector]:
    _, blobs, good = base_pack()
    (digest,) = blobs
    other = _digest(b"not in the manifest")
    v: list[Vector] = []

    def add(name: str, description: str, data: bytes, expect: str, **kw: Any) -> None:
        kw.setdefault("trusted", (KEY_A,))
        v.append(Vector(f"mip2-invalid-{name}", description, data, expect, **kw))

    add(
        "blob-not-in-manifest",
        "A blob member whose digest the manifest does not name",
        insert_member(file_member(f"blobs/sha256/{other}", b"not in the manifest")),
        "archive.unlisted_member",
    )
    add(
        "unlisted-member",
        "A member that is neither manifest, blob nor signature (a MIP 1 payload path)",
        insert_member(file_member("payloads/notes/memories.jsonl", NOTES)),
        "archive.unlisted_member",
    )
    add(
        "blob-missing",
        "The manifest names a blob the pack does not hold",
        tar_bytes([good[0], good[2]]),
        "archive.missing_member",
    )
    add(
        "blob-twice",
        "One blob stored twice, raw and as a zstd frame",
        insert_member(file_member(f"blobs/sha256/{digest}.zst", zstd_frame(NOTES))),
        "archive.duplicate_blob",
    )
    add(
        "member-twice",
        "The same blob member name twice",
        insert_member(good[1]),
        "archive.duplicate_member",
    )
    add(
        "member-twice-case",
        "Two member names that differ only in case",
        insert_member(file_member(f"blobs/sha256/{digest.upper()}", NOTES)),
        "archive.duplicate_member",
    )
    add(
        "raw-blob-longer",
        "A raw blob longer than its declared size",
        tar_bytes([good[0], file_member(good[1][0].name, NOTES + b"{}\n"), good[2]]),
        "integrity.size_mismatch",
    )
    add(
        "zstd-bomb",
        "A zstd frame that decompresses to 64 MiB for a blob declared as 121 bytes",
        tar_bytes(
            [good[0], file_member(f"{good[1][0].name}.zst", zstd_frame(bytes(64 << 20))), good[2]]
        ),
        "integrity.size_mismatch",
    )
    add(
        "zstd-longer",
        "A zstd frame whose output is the blob plus one more record",
        tar_bytes(
            [good[0], file_member(f"{good[1][0].name}.zst", zstd_frame(NOTES + b"{}\n")), good[2]]
        ),
        "integrity.size_mismatch",
    )
    add(
        "zstd-shorter",
        "A zstd frame whose output is shorter than the declared size",
        tar_bytes(
            [good[0], file_member(f"{good[1][0].name}.zst", zstd_frame(NOTES[:-1])), good[2]]
        ),
        "integrity.size_mismatch",
    )
    flipped = NOTES.replace(b"Paris", b"Lyon!")
    add(
        "digest-mismatch",
        "A raw blob of the declared size whose sha256 differs",
        tar_bytes([good[0], file_member(good[1][0].name, flipped), good[2]]),
        "integrity.digest_mismatch",
    )
    add(
        "digest-mismatch-zstd",
        "A zstd blob whose decompressed sha256 differs",
        tar_bytes([good[0], file_member(f"{good[1][0].name}.zst", zstd_frame(flipped)), good[2]]),
        "integrity.digest_mismatch",
    )
    frame = zstd_frame(NOTES)
    add(
        "zstd-corrupt",
        "A .zst member that is not a zstd frame",
        tar_bytes([good[0], file_member(f"{good[1][0].name}.zst", b"not zstd" * 8), good[2]]),
        "archive.bad_compression",
    )
    add(
        "zstd-truncated",
        "A zstd frame cut short",
        tar_bytes([good[0], file_member(f"{good[1][0].name}.zst", frame[:-4]), good[2]]),
        "archive.bad_compression",
    )
    add(
        "zstd-trailing",
        "Bytes after the zstd frame inside the member",
        tar_bytes([good[0], file_member(f"{good[1][0].name}.zst", frame + b"junk"), good[2]]),
        "archive.bad_compression",
    )
    kv = kv_cache()
    tensor = manifest2(activation_cube(kv))
    tensor_blobs = blob_bodies(tensor, [kv])
    add(
        "compressed-tensor",
        "A KV-cache blob stored as a zstd frame (tensors are raw)",
        tar_bytes(blob_pack_members(tensor, tensor_blobs, zst=tensor_blobs)),
        "archive.compressed_tensor",
    )
    return v


def mip2_vectors() -> list[Vector]:
    """Every MIP 2 vector: valid packs, then the blob attacks (more in vectors2_attacks)."""
    return [*_valid(), *blob_vectors()]
