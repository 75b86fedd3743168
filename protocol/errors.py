"""The one exception tree of the Memory Interchange Protocol library.

Every error the protocol library raises derives from :class:`MIPError` and
carries a stable, machine-readable ``code`` (for example
``archive.path_traversal``). Codes are part of MIP 1.0 (see SPEC.md, "Error
codes"): the registry returns them in its JSON errors, the runtime's CLI maps
them to human messages, and the conformance vectors name them as expected
outcomes. Messages are for people and may change; codes never do.

Tree::

    MIPError
    ├── ManifestError                 manifest.*   (schema, fields, JSON)
    │   └── UnsupportedVersionError   manifest.unsupported_version
    ├── ArchiveError                  archive.*    (container, members, limits)
    │   └── LimitExceededError        archive.limit.*
    ├── IntegrityError                integrity.*  (digest and size binding)
    ├── PayloadError                  payload.*    (content vs media type)
    └── SignatureError                signature.*  (keys and signatures)

Not here: HTTP status mapping and user-facing hints: those live at the edges
(registry exception handler, CLI error table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "ERROR_CODES",
    "ArchiveError",
    "IntegrityError",
    "LimitExceededError",
    "MIPError",
    "ManifestError",
    "PayloadError",
    "SignatureError",
    "UnsupportedVersionError",
    "Violation",
    "describe_code",
]

#: Every stable error code of MIP 1.0 with a one-line description, in tree
#: order. The registry and the CLI render these; SPEC.md lists the same table.
#: Codes are never renamed or reused; new codes may be added in minor versions.
ERROR_CODES: Mapping[str, str] = MappingProxyType(
    {
        "mip.error": "an unspecified protocol error",
        # ---- manifest.*
        "manifest.invalid": "the manifest is not valid MIP",
        "manifest.bad_json": "a JSON document is malformed or has duplicate keys or NaN/Infinity",
        "manifest.bad_encoding": (
            "JSON not UTF-8, with a BOM, or with U+0000 or a lone surrogate in a string"
        ),
        "manifest.too_deep": "a JSON document nests objects and arrays more than 64 levels deep",
        "manifest.schema": "the manifest violates the MIP manifest schema or a cross-field rule",
        "manifest.bad_mip_version": "mip_version is missing or is not MAJOR.MINOR",
        "manifest.unsupported_version": (
            "the manifest's MIP major version is not supported (e.g. 3.x)"
        ),
        "manifest.blob_conflict": (
            "one blob digest is named with two sizes, media types or check contexts"
        ),
        "manifest.migration_failed": "a registered migration hook failed or returned a non-object",
        "manifest.not_canonical": "manifest.json in a pack is not in RFC 8785 canonical form",
        "manifest.not_canonicalizable": (
            "a value cannot be put in RFC 8785 form (big int, NaN, ...)"
        ),
        # ---- archive.*
        "archive.invalid": "the pack container is malformed or unsafe",
        "archive.corrupt": "the file is not a readable gzip-compressed tar",
        "archive.trailing_data": "non-zero bytes follow the end of the tar archive",
        "archive.absolute_path": "a member name is an absolute path",
        "archive.path_traversal": "a member name contains a '..' component",
        "archive.bad_member_name": "a member name is not in normal form ('.', '//', '\\')",
        "archive.bad_name_encoding": "a member name is not valid UTF-8",
        "archive.symlink": "a member is a symbolic link",
        "archive.hardlink": "a member is a hard link",
        "archive.special_file": "a member is a device, FIFO, sparse or other non-regular file",
        "archive.directory_member": "a member is a directory entry",
        "archive.duplicate_member": "two members have the same name (compared case-insensitively)",
        "archive.unlisted_member": (
            "a member is neither the manifest, a listed payload nor a signature"
        ),
        "archive.missing_member": "a payload listed in the manifest is not in the pack",
        "archive.missing_manifest": "the pack holds no manifest.json",
        "archive.manifest_not_first": "the first member of the pack is not manifest.json",
        "archive.signature_name_mismatch": "signatures/<keyid>.json holds another key's signature",
        "archive.payload_set_mismatch": (
            "a writer was given payload files that differ from the manifest"
        ),
        "archive.duplicate_blob": "a MIP 2 pack stores one blob twice (raw and .zst)",
        "archive.member_order": (
            "MIP 2 members are not manifest, blobs by digest, then signatures by key id"
        ),
        "archive.compressed_tensor": "a MIP 2 tensor blob is zstd-compressed; tensors are raw",
        "archive.bad_compression": "a MIP 2 .zst member is not exactly one valid zstd frame",
        "archive.version_mismatch": (
            "the container's format is not the manifest's major (2.x in gzip, 1.x in plain tar)"
        ),
        "archive.target_not_empty": "the extraction target exists and is not an empty directory",
        "archive.limit": "a reading limit was exceeded",
        "archive.limit.pack_size": "the pack file is larger than the limit",
        "archive.limit.manifest_size": "the manifest is larger than the limit",
        "archive.limit.members": "the pack has more members than the limit",
        "archive.limit.total_size": "the uncompressed content is larger than the limit",
        "archive.limit.compression_ratio": "the compression ratio exceeds the limit (a zip bomb?)",
        "archive.limit.signatures": "the pack carries more signatures than the limit",
        "archive.limit.signature_size": "a signature file is larger than 4096 bytes",
        "archive.limit.header_size": "a PAX or GNU long-name header is larger than the limit",
        # ---- integrity.*
        "integrity.mismatch": "a payload does not match its manifest entry",
        "integrity.size_mismatch": "a payload's size differs from the size in the manifest",
        "integrity.digest_mismatch": "a payload's sha256 differs from the digest in the manifest",
        # ---- payload.*
        "payload.invalid": "a payload's content is not what its media type claims",
        "payload.bad_jsonl": "a memories line is not a strict UTF-8 JSON value",
        "payload.bad_memory_record": "a memories line violates the memory-record schema",
        "payload.duplicate_memory_id": "two memory records in a payload share an id",
        "payload.embedding_dimension": (
            "an embedding vector has the wrong length or a non-finite value"
        ),
        "payload.jsonl_line_too_long": "a memories line is longer than 1 MiB",
        "payload.not_safetensors": (
            "a payload that claims to be safetensors is not valid safetensors"
        ),
        "payload.pickle_forbidden": (
            "a payload is a pickle or torch.save zip; MIP never loads pickles"
        ),
        "payload.kv_cache_shape": "KV-cache tensors do not match the cube's model fingerprint",
        "payload.kv_chunk": "a KV chunk's header, manifest entry and token hash disagree (4.2.2)",
        "payload.fingerprint_mismatch": "a KV cache names another model fingerprint than its cube",
        "payload.lora_config": "adapter_config.json is not a valid PEFT LoRA config",
        "payload.lora_weights": "adapter_model.safetensors does not hold only float LoRA tensors",
        # ---- signature.*
        "signature.invalid": "a signature by a trusted key does not verify: the pack was altered",
        "signature.bad_key": "a key is malformed or is not an Ed25519 key",
        "signature.malformed": "a signature file is not a well-formed MIP signature",
        "signature.missing": "the pack carries no signature",
        "signature.threshold": "fewer valid trusted signatures than the required threshold",
        "signature.unsupported_algorithm": "a signature uses an algorithm other than ed25519",
        "signature.untrusted": "no signature is by a trusted key",
        "signature.revoked_key": "no signature is by a trusted key, and one is by a revoked key",
        "signature.statement_mismatch": (
            "a DSSE envelope's in-toto statement is not the one the pack's manifest gives"
        ),
        # ---- log.* (transparency log, SPEC 16.2)
        "log.bad_proof": "a Merkle inclusion or consistency proof does not verify",
        "log.bad_tree_head": "a tree head is malformed or not signed by the pinned log key",
        # ---- build.* (pack sources) and ref.* (pack references)
        "build.no_manifest": "the pack source folder has no manifest.json",
        "build.missing_payload": "a payload listed in the source manifest is missing",
        "build.not_regular_file": "a payload in the source folder is a link or not a regular file",
        "ref.invalid": "a pack reference, version or version range is malformed",
    }
)


def describe_code(code: str) -> str:
    """The one-line description of a code; the nearest parent's for unknown ones."""
    while code:
        if code in ERROR_CODES:
            return ERROR_CODES[code]
        code = code.rpartition(".")[0]
    return ERROR_CODES["mip.error"]


@dataclass(frozen=True)
class Violation:
    """One schema violation: where (RFC 6901 JSON pointer) and what."""

    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class MIPError(Exception):
    """Root of every error raised by the protocol library."""

    code: str = "mip.error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.detail: dict[str, Any] = detail

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON object MIP tools exchange: code, message, detail."""
        detail = {
            key: ([v.to_dict() for v in value] if key == "violations" else value)
            for key, value in self.detail.items()
        }
        return {"code": self.code, "message": self.message, "detail": detail}


class ManifestError(MIPError):
    """The manifest is not valid MIP: bad JSON, schema violations, bad fields."""

    code = "manifest.invalid"

    @property
    def violations(self) -> list[Violation]:
        found = self.detail.get("violations", [])
        return list(found)


class UnsupportedVersionError(ManifestError):
    """The manifest declares a MIP major version this reader cannot read."""

    code = "manifest.unsupported_version"


class ArchiveError(MIPError):
    """The pack container is malformed or unsafe to read."""

    code = "archive.invalid"


class LimitExceededError(ArchiveError):
    """A hard reading limit was exceeded (size, count, compression ratio)."""

    code = "archive.limit"


class IntegrityError(MIPError):
    """A payload does not match the digest or size the manifest binds it to."""

    code = "integrity.mismatch"


class PayloadError(MIPError):
    """A payload's content is not what its media type claims."""

    code = "payload.invalid"


class SignatureError(MIPError):
    """A key or signature is malformed, invalid, untrusted or missing."""

    code = "signature.invalid"
