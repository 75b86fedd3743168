"""Write the MIP 1.0 conformance vectors, deterministically.

    python -m protocol.conformance.generate [OUT_DIR]   # default: vectors/ next to this file

Every vector is built here from fixed inputs (fixed Ed25519 seeds, fixed
timestamps, fixed tensors), so running the script again reproduces the
committed files byte for byte. Valid packs are written with the library's own
writer; malicious ones are crafted by hand with :mod:`tarfile` and
:mod:`gzip`, using the same deterministic member metadata, so that each one
differs from a valid pack in exactly the way its name says.

``index.json`` lists every vector: ``name``, ``file``, ``kind`` (``pack`` or
``manifest``), ``description``, ``trusted_keys`` (``ed25519:<base64>``),
``threshold``, ``limits`` (overrides of the default reading limits) and
``expect`` (``{"outcome": "ok", "manifest_sha256", "signers"}`` or
``{"outcome": "error", "code"}``).

Not here: library code. This is a script; tests import its helpers, nothing
else should.
"""

from __future__ import annotations

import copy
import json
import sys
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from protocol.canonical import canonical_bytes
from protocol.conformance.fixtures import (  # noqa: F401 - re-exported for the tests
    EMBEDDED,
    FINGERPRINT,
    KEY_A,
    KEY_B,
    KEY_C,
    LORA_CONFIG,
    NOTES,
    PICKLE_BYTES,
    T0,
    TINY_CONFIG,
    TINY_SPECIALS,
    TINY_VOCAB,
    TINY_WEIGHTS_SHA256,
    VECTORS_DIR,
    Member,
    Vector,
    activation_cube,
    file_member,
    gzip_bytes,
    kv_cache,
    lora_weights,
    manifest_dict,
    memories_jsonl,
    ok_expectation,
    pack_bytes,
    pack_members,
    parameter_cube,
    payload_entry,
    payload_map,
    plaintext_cube,
    safetensors_bytes,
    tar_bytes,
    tarinfo,
)
from protocol.conformance.vectors2_attacks import all_mip2_vectors
from protocol.signing import SigningKey


def _simple(
    name: str,
    description: str,
    manifest: dict[str, Any],
    bodies: Iterable[bytes],
    expect: str,
    **kw: Any,
) -> Vector:
    keys = kw.pop("keys", (KEY_A,))
    trusted = kw.pop("trusted", (KEY_A,))
    data = pack_bytes(manifest, payload_map(manifest, bodies), keys)
    return Vector(name, description, data, expect, trusted=trusted, **kw)


def _with_member(
    extra: Member, *, first: bool = False, keys: Iterable[SigningKey] = (KEY_A,)
) -> bytes:
    manifest = manifest_dict()
    members = pack_members(manifest, payload_map(manifest, [NOTES]), keys)
    members.insert(0 if first else 1, extra)
    return gzip_bytes(tar_bytes(members))


def _valid_vectors() -> list[Vector]:
    kv = kv_cache()
    weights = lora_weights()
    vectors = [
        _simple(
            "valid-plaintext-unsigned",
            "A plaintext pack with no signature, read without trust",
            manifest_dict(),
            [NOTES],
            "ok",
            keys=(),
            trusted=(),
        ),
        _simple(
            "valid-plaintext-signed",
            "A plaintext pack signed by one trusted key",
            manifest_dict(),
            [NOTES],
            "ok",
        ),
        _simple(
            "valid-plaintext-empty-payload",
            "A memories payload may hold no records",
            manifest_dict(plaintext_cube(body=b"")),
            [b""],
            "ok",
        ),
        _simple(
            "valid-plaintext-embeddings",
            "Records with embeddings of the cube's stated dimension",
            manifest_dict(
                plaintext_cube(
                    body=EMBEDDED, embedding={"model": "example/embedder", "dimension": 3}
                )
            ),
            [EMBEDDED],
            "ok",
        ),
        _simple(
            "valid-activation-kv-cache",
            "A tiny KV cache in safetensors bound to its model fingerprint",
            manifest_dict(activation_cube(kv)),
            [kv],
            "ok",
        ),
        _simple(
            "valid-activation-kv-cache-bound-to-weights",
            "MIP 1.1: the fingerprint also names the checkpoint (weights_sha256); the KV "
            "header's fingerprint digest still covers the eight 1.0 fields only",
            manifest_dict(activation_cube(kv, weights=True), mip_version="1.1"),
            [kv],
            "ok",
        ),
        _simple(
            "valid-parameter-lora",
            "A tiny PEFT LoRA adapter (config + safetensors weights)",
            manifest_dict(parameter_cube(LORA_CONFIG, weights)),
            [LORA_CONFIG, weights],
            "ok",
        ),
        _simple(
            "valid-all-memory-types",
            "One pack with a plaintext, an activation and a parameter cube",
            manifest_dict(
                plaintext_cube(), activation_cube(kv), parameter_cube(LORA_CONFIG, weights)
            ),
            [NOTES, kv, LORA_CONFIG, weights],
            "ok",
        ),
        _simple(
            "valid-multi-signature-threshold-2",
            "Two signatures by two trusted keys, threshold 2",
            manifest_dict(),
            [NOTES],
            "ok",
            keys=(KEY_A, KEY_B),
            trusted=(KEY_A, KEY_B),
            threshold=2,
        ),
        _simple(
            "valid-multi-signature-one-untrusted",
            "Two signatures, only one by a trusted key",
            manifest_dict(),
            [NOTES],
            "ok",
            keys=(KEY_A, KEY_C),
            trusted=(KEY_A,),
        ),
    ]
    future = manifest_dict(
        plaintext_cube(
            x_future_cube={"nested": [1, 2.5, None, True]},
            behaviour={"priority": 0.5, "x_future_behaviour": "kept"},
        ),
        x_future_top="kept and signed",
        authors=[{"name": "Ada", "x_future_author": 1}],
    )
    future["cubes"][0]["payloads"][0]["x_future_payload"] = {"k": "v"}
    vectors.append(
        _simple(
            "valid-unknown-future-fields",
            "Unknown optional fields at every level: kept and covered by the signature",
            future,
            [NOTES],
            "ok",
        )
    )
    minor = manifest_dict(mip_version="1.9", x_added_in_1_9={"feature": True})
    vectors.append(
        _simple(
            "valid-mip-1.9-minor", "A manifest of a later 1.x minor is read", minor, [NOTES], "ok"
        )
    )
    full = manifest_dict(
        plaintext_cube(
            title="Geography facts",
            updated_at="2025-02-03T04:05:06.123456789+02:00",
            provenance={
                "source": "https://example.org/facts",
                "author": "ada",
                "derived_from": ["example/base@1.0.0"],
            },
            governance={
                "access": {"visibility": "restricted", "principals": ["team:geo"]},
                "usage_terms": "internal use",
                "ttl_seconds": 86400,
                "expires_at": "2026-01-01T00:00:00Z",
            },
            behaviour={"access_count": 3, "last_accessed_at": None, "priority": 0.9},
        ),
        description="Every optional field of MIP 1.0.",
        authors=[
            {"name": "Ada Lovelace", "email": "ada@example.org", "url": "https://example.org"}
        ],
        keywords=["geo", "facts"],
    )
    vectors.append(
        _simple(
            "valid-full-metadata",
            "Every optional field, explicit nulls and offsets",
            full,
            [NOTES],
            "ok",
        )
    )
    long_id = "c" + "x" * 63
    long_cube = plaintext_cube(long_id)
    long_cube["payloads"][0]["path"] = f"payloads/{long_id}/" + "m" * 120 + ".jsonl"
    vectors.append(
        _simple(
            "valid-long-path-pax",
            "A payload path over 100 bytes (stored in a PAX header)",
            manifest_dict(long_cube),
            [NOTES],
            "ok",
        )
    )
    unicode_notes = memories_jsonl([{"id": "u1", "text": "日本語のメモ"}])
    vectors.append(
        _simple(
            "valid-unicode-text",
            "Non-ASCII text in the manifest and the memories",
            manifest_dict(
                plaintext_cube(body=unicode_notes), title="Mémoire — 記憶", description="ünïcødé ✓"
            ),
            [unicode_notes],
            "ok",
        )
    )
    return vectors


def _container_vectors() -> list[Vector]:
    manifest = manifest_dict()
    good = pack_members(manifest, payload_map(manifest, [NOTES]), (KEY_A,))
    v: list[Vector] = []

    def add(name: str, description: str, data: bytes, expect: str, **kw: Any) -> None:
        kw.setdefault("trusted", (KEY_A,))
        v.append(Vector(name, description, data, expect, **kw))

    add(
        "invalid-not-gzip",
        "The file is not gzip at all",
        b"PK\x03\x04 this is a zip, not a pack",
        "archive.corrupt",
    )
    full = gzip_bytes(tar_bytes(good))
    add(
        "invalid-truncated-gzip",
        "The gzip stream is cut short",
        full[: len(full) // 2],
        "archive.corrupt",
    )
    add(
        "invalid-trailing-data",
        "Non-zero bytes after the end of the tar archive",
        gzip_bytes(tar_bytes(good) + b"HIDDEN" + bytes(506)),
        "archive.trailing_data",
    )
    add(
        "invalid-empty-archive",
        "A tar archive with no member",
        gzip_bytes(tar_bytes([])),
        "archive.missing_manifest",
    )
    add(
        "invalid-absolute-path",
        "A member named with an absolute path",
        _with_member(file_member("/etc/evil", b"x")),
        "archive.absolute_path",
    )
    add(
        "invalid-path-traversal",
        "A member name climbing out with '..'",
        _with_member(file_member("payloads/../../evil", b"x")),
        "archive.path_traversal",
    )
    add(
        "invalid-non-normal-name",
        "A member name with a '.' component",
        _with_member(file_member("payloads/./notes/x", b"x")),
        "archive.bad_member_name",
    )
    bad_name = tarinfo("payloads/notes/\udcff.jsonl", 1)
    add(
        "invalid-name-not-utf8",
        "A member name that is not UTF-8",
        gzip_bytes(
            tar_bytes(
                [good[0], (bad_name, b"x")], fmt=tarfile.USTAR_FORMAT, errors="surrogateescape"
            )
        ),
        "archive.bad_name_encoding",
    )
    link = tarinfo("payloads/notes/link", kind=tarfile.SYMTYPE)
    link.linkname = "/etc/passwd"
    add("invalid-symlink", "A symbolic link member", _with_member((link, None)), "archive.symlink")
    hard = tarinfo("payloads/notes/hard", kind=tarfile.LNKTYPE)
    hard.linkname = "manifest.json"
    add("invalid-hardlink", "A hard link member", _with_member((hard, None)), "archive.hardlink")
    add(
        "invalid-fifo",
        "A FIFO member",
        _with_member((tarinfo("payloads/notes/fifo", kind=tarfile.FIFOTYPE), None)),
        "archive.special_file",
    )
    add(
        "invalid-char-device",
        "A character device member",
        _with_member((tarinfo("payloads/notes/dev", kind=tarfile.CHRTYPE), None)),
        "archive.special_file",
    )
    add(
        "invalid-directory-member",
        "A directory entry",
        _with_member((tarinfo("payloads/notes", kind=tarfile.DIRTYPE), None)),
        "archive.directory_member",
    )
    add(
        "invalid-duplicate-member",
        "The same payload twice",
        gzip_bytes(tar_bytes([*good[:2], good[1], *good[2:]])),
        "archive.duplicate_member",
    )
    upper = tarinfo(good[1][0].name.upper().replace("PAYLOADS", "payloads"), len(NOTES))
    add(
        "invalid-duplicate-member-case",
        "Two members whose names differ only by case",
        gzip_bytes(tar_bytes([*good[:2], (upper, NOTES), *good[2:]])),
        "archive.duplicate_member",
    )
    add(
        "invalid-unlisted-member",
        "A member the manifest does not list",
        _with_member(file_member("payloads/notes/extra.txt", b"surprise")),
        "archive.unlisted_member",
    )
    two = manifest_dict(plaintext_cube("notes"), plaintext_cube("more"))
    members = pack_members(two, payload_map(two, [NOTES, NOTES]), (KEY_A,))
    add(
        "invalid-missing-member",
        "A payload listed in the manifest is absent",
        gzip_bytes(tar_bytes([m for m in members if "more" not in m[0].name])),
        "archive.missing_member",
    )
    add(
        "invalid-manifest-not-first",
        "The manifest is not the first member",
        gzip_bytes(tar_bytes([good[1], good[0], *good[2:]])),
        "archive.manifest_not_first",
    )
    other = KEY_B.sign(good[0][1] or b"").to_bytes()
    add(
        "invalid-signature-name-mismatch",
        "signatures/<A>.json holds B's signature",
        gzip_bytes(tar_bytes([*good[:2], file_member(f"signatures/{KEY_A.keyid}.json", other)])),
        "archive.signature_name_mismatch",
    )
    return v


def _limit_vectors() -> list[Vector]:
    v: list[Vector] = []
    big = manifest_dict(x_padding="a" * (4 * 1024**2 + 1))
    v.append(
        Vector(
            "invalid-limit-manifest-size",
            "A manifest over the 4 MiB default limit",
            pack_bytes(big, payload_map(big, [NOTES])),
            "archive.limit.manifest_size",
        )
    )
    three = manifest_dict(plaintext_cube("a"), plaintext_cube("b"), plaintext_cube("c"))
    v.append(
        Vector(
            "invalid-limit-members",
            "More members than max_members (3)",
            pack_bytes(three, payload_map(three, [NOTES] * 3)),
            "archive.limit.members",
            limits={"max_members": 3},
        )
    )
    huge = manifest_dict()
    huge["cubes"][0]["payloads"][0]["size"] = 17 * 1024**3
    v.append(
        Vector(
            "invalid-limit-declared-total-size",
            "The manifest declares 17 GiB of payloads",
            pack_bytes(huge, {}),
            "archive.limit.total_size",
        )
    )
    v.append(
        Vector(
            "invalid-limit-total-size",
            "Content over max_total_bytes (1024)",
            pack_bytes(manifest_dict(), payload_map(manifest_dict(), [NOTES])),
            "archive.limit.total_size",
            limits={"max_total_bytes": 1024},
        )
    )
    zeros = bytes(5 * 1024**2)
    bomb = manifest_dict(plaintext_cube(body=zeros))
    v.append(
        Vector(
            "invalid-compression-bomb",
            "5 MiB of zeros compressed over 1000:1",
            pack_bytes(bomb, payload_map(bomb, [zeros])),
            "archive.limit.compression_ratio",
        )
    )
    v.append(
        Vector(
            "invalid-limit-pack-size",
            "A pack file over max_pack_bytes (64)",
            pack_bytes(manifest_dict(), payload_map(manifest_dict(), [NOTES])),
            "archive.limit.pack_size",
            limits={"max_pack_bytes": 64},
        )
    )
    v.append(
        Vector(
            "invalid-limit-signatures",
            "More signatures than max_signatures (1)",
            pack_bytes(manifest_dict(), payload_map(manifest_dict(), [NOTES]), (KEY_A, KEY_B)),
            "archive.limit.signatures",
            limits={"max_signatures": 1},
            trusted=(KEY_A,),
        )
    )
    manifest = manifest_dict()
    good = pack_members(manifest, payload_map(manifest, [NOTES]))
    padded = b" " * 5000 + KEY_A.sign(good[0][1] or b"").to_bytes()
    v.append(
        Vector(
            "invalid-limit-signature-size",
            "A signature file over 4096 bytes",
            gzip_bytes(tar_bytes([*good, file_member(f"signatures/{KEY_A.keyid}.json", padded)])),
            "archive.limit.signature_size",
        )
    )
    pax = tarinfo("payloads/notes/memories.jsonl", len(NOTES))
    pax.pax_headers = {"comment": "z" * (2 * 1024**2)}
    v.append(
        Vector(
            "invalid-limit-pax-header",
            "A PAX extended header over 1 MiB",
            gzip_bytes(tar_bytes([good[0], (pax, NOTES)])),
            "archive.limit.header_size",
        )
    )
    return v


def _content_vectors() -> list[Vector]:
    v: list[Vector] = []
    manifest = manifest_dict()
    tampered = NOTES.replace(b"Paris", b"Rome!")
    v.append(
        Vector(
            "invalid-digest-mismatch",
            "A payload whose bytes differ from its sha256",
            pack_bytes(manifest, payload_map(manifest, [tampered]), (KEY_A,)),
            "integrity.digest_mismatch",
            trusted=(KEY_A,),
        )
    )
    v.append(
        Vector(
            "invalid-size-mismatch",
            "A payload whose size differs from the manifest",
            pack_bytes(manifest, payload_map(manifest, [NOTES + b"\n"]), (KEY_A,)),
            "integrity.size_mismatch",
            trusted=(KEY_A,),
        )
    )

    def raw_manifest(name: str, description: str, body: bytes, expect: str) -> None:
        members = [
            file_member("manifest.json", body),
            file_member("payloads/notes/memories.jsonl", NOTES),
        ]
        v.append(Vector(name, description, gzip_bytes(tar_bytes(members)), expect))

    raw_manifest(
        "invalid-manifest-bad-json", "manifest.json is not JSON", b"{not json", "manifest.bad_json"
    )
    raw_manifest(
        "invalid-manifest-duplicate-keys",
        "manifest.json repeats a key",
        canonical_bytes(manifest)[:-1] + b',"title":"again"}',
        "manifest.bad_json",
    )
    raw_manifest(
        "invalid-manifest-not-utf8",
        "manifest.json is not UTF-8",
        canonical_bytes(manifest).replace(b"A conformance", b"A \xff conformance"),
        "manifest.bad_encoding",
    )
    raw_manifest(
        "invalid-manifest-not-canonical",
        "manifest.json is valid but pretty-printed",
        json.dumps(manifest, indent=2).encode(),
        "manifest.not_canonical",
    )
    no_title = {k: val for k, val in manifest.items() if k != "title"}
    raw_manifest(
        "invalid-manifest-schema",
        "manifest.json lacks the required title",
        canonical_bytes(no_title),
        "manifest.schema",
    )
    raw_manifest(
        "invalid-manifest-2.0",
        "A MIP 2.0 manifest in a gzip'd (MIP 1) container is refused",
        canonical_bytes({**manifest, "mip_version": "2.0"}),
        "archive.version_mismatch",
    )
    raw_manifest(
        "invalid-manifest-bad-mip-version",
        "mip_version is not MAJOR.MINOR",
        canonical_bytes({**manifest, "mip_version": "1"}),
        "manifest.bad_mip_version",
    )
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    raw_manifest(
        "invalid-manifest-too-deep",
        "An unknown field nested 100 levels deep",
        canonical_bytes({**manifest, "x_deep": deep}),
        "manifest.too_deep",
    )
    raw_manifest(
        "invalid-manifest-big-integer",
        "An integer beyond 2**53 cannot be canonical",
        canonical_bytes(manifest)[:-1] + b',"x_big":18014398509481985}',
        "manifest.not_canonicalizable",
    )

    def payload_vector(
        name: str, description: str, cube: dict[str, Any], bodies: list[bytes], expect: str
    ) -> None:
        m = manifest_dict(cube)
        v.append(Vector(name, description, pack_bytes(m, payload_map(m, bodies)), expect))

    payload_vector(
        "invalid-pickle-payload",
        "A KV-cache payload that is a pickle",
        activation_cube(PICKLE_BYTES),
        [PICKLE_BYTES],
        "payload.pickle_forbidden",
    )
    junk = b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!"
    payload_vector(
        "invalid-not-safetensors",
        "A KV-cache payload that is not safetensors",
        activation_cube(junk),
        [junk],
        "payload.not_safetensors",
    )
    wrong = kv_cache(shape_override=(1, 2, 3, 5))
    payload_vector(
        "invalid-kv-cache-shape",
        "KV tensors with the wrong head_dim",
        activation_cube(wrong),
        [wrong],
        "payload.kv_cache_shape",
    )
    other = kv_cache(header_fingerprint="0" * 64)
    payload_vector(
        "invalid-kv-fingerprint-mismatch",
        "A KV cache made for another model",
        activation_cube(other),
        [other],
        "payload.fingerprint_mismatch",
    )
    bad_line = b'{"id": "m1", "text": "ok"}\n{"id": "m2", "text": \n'
    payload_vector(
        "invalid-jsonl-syntax",
        "A memories line that is not JSON",
        plaintext_cube(body=bad_line),
        [bad_line],
        "payload.bad_jsonl",
    )
    no_text = memories_jsonl([{"id": "m1"}])
    payload_vector(
        "invalid-memory-record",
        "A memory record without text",
        plaintext_cube(body=no_text),
        [no_text],
        "payload.bad_memory_record",
    )
    newline_id = memories_jsonl([{"id": "m1\n", "text": "a"}])
    payload_vector(
        "invalid-memory-id-trailing-newline",
        "A memory id ending in a newline (a JSON Schema pattern's $ is the end of the text)",
        plaintext_cube(body=newline_id),
        [newline_id],
        "payload.bad_memory_record",
    )
    dup = memories_jsonl([{"id": "m1", "text": "a"}, {"id": "m1", "text": "b"}])
    payload_vector(
        "invalid-duplicate-memory-id",
        "Two memory records with one id",
        plaintext_cube(body=dup),
        [dup],
        "payload.duplicate_memory_id",
    )
    emb = memories_jsonl(
        [
            {
                "id": "e1",
                "text": "x",
                "embedding": {"model": "example/embedder", "dimension": 3, "vector": [1.0, 2.0]},
            }
        ]
    )
    payload_vector(
        "invalid-embedding-dimension",
        "An embedding shorter than its dimension",
        plaintext_cube(body=emb),
        [emb],
        "payload.embedding_dimension",
    )
    long_line = b'{"id":"m1","text":"' + b"a" * (1024**2) + b'"}\n'
    payload_vector(
        "invalid-jsonl-line-too-long",
        "A memories line over 1 MiB",
        plaintext_cube(body=long_line),
        [long_line],
        "payload.jsonl_line_too_long",
    )
    bad_cfg = canonical_bytes(
        {"peft_type": "PREFIX_TUNING", "r": 2, "lora_alpha": 4, "target_modules": "q"}
    )
    weights = lora_weights()
    payload_vector(
        "invalid-lora-config",
        "adapter_config.json that is not a LoRA config",
        parameter_cube(bad_cfg, weights),
        [bad_cfg, weights],
        "payload.lora_config",
    )
    bad_w = lora_weights(bad_name=True)
    payload_vector(
        "invalid-lora-weights",
        "LoRA weights carrying a non-LoRA tensor",
        parameter_cube(LORA_CONFIG, bad_w),
        [LORA_CONFIG, bad_w],
        "payload.lora_weights",
    )
    return v


def _signature_vectors() -> list[Vector]:
    v: list[Vector] = []
    manifest = manifest_dict()
    payloads = payload_map(manifest, [NOTES])
    good = pack_members(manifest, payloads)
    v.append(
        Vector(
            "invalid-signature-missing",
            "An unsigned pack when a key is trusted",
            pack_bytes(manifest, payloads),
            "signature.missing",
            trusted=(KEY_A,),
        )
    )
    v.append(
        Vector(
            "invalid-signature-untrusted",
            "Signed only by a key that is not trusted",
            pack_bytes(manifest, payloads, (KEY_C,)),
            "signature.untrusted",
            trusted=(KEY_A,),
        )
    )
    v.append(
        Vector(
            "invalid-signature-threshold",
            "One valid signature where two are required",
            pack_bytes(manifest, payloads, (KEY_A,)),
            "signature.threshold",
            trusted=(KEY_A, KEY_B),
            threshold=2,
        )
    )
    forged = KEY_A.sign(b"some other manifest").to_bytes()
    v.append(
        Vector(
            "invalid-signature-forged",
            "A trusted key's signature over other bytes",
            gzip_bytes(tar_bytes([*good, file_member(f"signatures/{KEY_A.keyid}.json", forged)])),
            "signature.invalid",
            trusted=(KEY_A,),
        )
    )
    v.append(
        Vector(
            "invalid-signature-malformed",
            "A signature file that is not JSON",
            gzip_bytes(tar_bytes([*good, file_member(f"signatures/{KEY_A.keyid}.json", b"{oops")])),
            "signature.malformed",
            trusted=(KEY_A,),
        )
    )
    rsa = canonical_bytes({"alg": "rsa-pss", "keyid": KEY_A.keyid, "sig": "AAAA"})
    v.append(
        Vector(
            "invalid-signature-algorithm",
            "A signature with an algorithm other than ed25519",
            gzip_bytes(tar_bytes([*good, file_member(f"signatures/{KEY_A.keyid}.json", rsa)])),
            "signature.unsupported_algorithm",
            trusted=(KEY_A,),
        )
    )
    return v


def _manifest_vectors() -> list[Vector]:
    v: list[Vector] = []
    manifest = manifest_dict()

    def add(name: str, description: str, data: bytes, expect: str) -> None:
        v.append(Vector(name, description, data, expect, kind="manifest"))

    add(
        "manifest-valid-pretty",
        "A standalone manifest may use any JSON spelling",
        json.dumps(manifest, indent=2).encode(),
        "ok",
    )
    add(
        "manifest-valid-future-fields",
        "Unknown fields in a 1.3 manifest are kept",
        canonical_bytes({**manifest, "mip_version": "1.3", "x_new": {"a": [1, 2]}}),
        "ok",
    )
    bad = copy.deepcopy(manifest)
    bad["version"] = "1.0"
    bad["name"] = "Not A Name"
    bad["cubes"][0]["payloads"][0]["sha256"] = "xyz"
    add(
        "manifest-invalid-several-violations",
        "Three schema violations are all reported",
        canonical_bytes(bad),
        "manifest.schema",
    )
    dup = manifest_dict(plaintext_cube("notes"), plaintext_cube("notes"))
    add(
        "manifest-invalid-duplicate-cube-id",
        "Two cubes with one id",
        canonical_bytes(dup),
        "manifest.schema",
    )
    outside = manifest_dict()
    outside["cubes"][0]["payloads"][0]["path"] = "payloads/other/memories.jsonl"
    add(
        "manifest-invalid-payload-outside-cube",
        "A payload outside its cube's folder",
        canonical_bytes(outside),
        "manifest.schema",
    )
    act = manifest_dict(activation_cube(b"x"))
    del act["cubes"][0]["model"]
    add(
        "manifest-invalid-activation-without-model",
        "An activation cube needs a model fingerprint",
        canonical_bytes(act),
        "manifest.schema",
    )
    bad_weights = manifest_dict(activation_cube(b"x", weights=True), mip_version="1.1")
    bad_weights["cubes"][0]["model"]["weights_sha256"] = "not-a-digest"
    add(
        "manifest-invalid-weights-digest",
        "A fingerprint's weights_sha256 must be a hex sha256",
        canonical_bytes(bad_weights),
        "manifest.schema",
    )
    add(
        "manifest-invalid-bad-date",
        "A timestamp that is not a real date",
        canonical_bytes({**manifest, "created_at": "2025-02-30T00:00:00Z"}),
        "manifest.schema",
    )
    add(
        "manifest-invalid-3.0",
        "A MIP 3.0 manifest is refused",
        canonical_bytes({**manifest, "mip_version": "3.0"}),
        "manifest.unsupported_version",
    )
    add(
        "manifest-invalid-not-object",
        "A manifest must be a JSON object",
        b"[1, 2, 3]",
        "manifest.schema",
    )
    add(
        "manifest-invalid-bom",
        "A manifest starting with a byte-order mark",
        b"\xef\xbb\xbf" + canonical_bytes(manifest),
        "manifest.bad_encoding",
    )
    return v


BUILDERS: tuple[Callable[[], list[Vector]], ...] = (
    _valid_vectors,
    _container_vectors,
    _limit_vectors,
    _content_vectors,
    _signature_vectors,
    _manifest_vectors,
)


def all_vectors() -> list[Vector]:
    vectors = [vector for build in (*BUILDERS, all_mip2_vectors) for vector in build()]
    names = [v.name for v in vectors]
    assert len(names) == len(set(names)), "vector names must be unique"
    return vectors


def index_entry(vector: Vector) -> dict[str, Any]:
    expect = (
        ok_expectation(vector)
        if vector.expect == "ok"
        else {"outcome": "error", "code": vector.expect}
    )
    return {
        "name": vector.name,
        "file": vector.file,
        "kind": vector.kind,
        "description": vector.description,
        "trusted_keys": [k.public_key.to_text() for k in vector.trusted],
        "threshold": vector.threshold,
        "limits": dict(sorted(vector.limits.items())),
        "expect": expect,
    }


def generate(out: Path = VECTORS_DIR) -> list[dict[str, Any]]:
    """Write every vector and ``index.json`` into ``out``; return the index entries."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for vector in all_vectors():
        (out / vector.file).write_bytes(vector.data)
        entries.append(index_entry(vector))
    index = {"mip_version": "1.0", "vectors": entries}
    (out / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return entries


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else VECTORS_DIR
    entries = generate(out)
    print(f"wrote {len(entries)} vectors to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
