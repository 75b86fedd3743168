"""The Memory Interchange Protocol (MIP) 1.x and 2.x: manifests, packs, blobs, signatures.

A pure library: no Django, no network, no pickle. Everything a registry or a
runtime needs to write, read, check and sign ``.memcube`` packs is exported
here; modules starting with an underscore, and names not listed in
``__all__``, are internal. The normative specification is ``SPEC.md``.

Not here: registries, caches, key storage, networking (the registry and the
runtime build those on this library).
"""

from .archive import (
    MANIFEST_MEMBER,
    BlobSink,
    BlobWriter,
    Pack,
    ReadLimits,
    container_major,
    read_pack,
    write_pack,
)
from .blob_locations import BlobLocation, blob_locations
from .blobs import BlobEntry, manifest_blobs, select_blobs
from .builder import build_manifest, pack_directory, sign_pack
from .canonical import canonical_bytes, canonical_sha256
from .chunking import split_records
from .errors import (
    ERROR_CODES,
    ArchiveError,
    IntegrityError,
    LimitExceededError,
    ManifestError,
    MIPError,
    PayloadError,
    SignatureError,
    UnsupportedVersionError,
    Violation,
    describe_code,
)
from .fingerprint import VOLATILE_CONFIG_KEYS, config_digest, tokenizer_digest, weights_digest
from .manifest import (
    AccessPolicy,
    Author,
    Behaviour,
    EmbeddingSpec,
    Governance,
    LifecycleState,
    Manifest,
    MediaType,
    MemCube,
    MemoryType,
    ModelFingerprint,
    PayloadRef,
    Provenance,
    format_timestamp,
    parse_json,
    parse_timestamp,
)
from .migrate import migrate_pack
from .payloads import (
    KV_INPUT_IDS,
    MemoryRecord,
    fingerprint_digest,
    iter_memory_records,
    kv_tensor_name,
    read_safetensors_header,
    validate_payload,
)
from .refs import PackRef, Version, VersionRange, parse_ref
from .signing import PublicKey, Signature, SigningKey, key_id, sign_manifest
from .trust import (
    SignerCheck,
    SignerStatus,
    TrustedKey,
    TrustedKeys,
    Verification,
    VerificationResult,
    verify_or_raise,
    verify_signatures,
)
from .version import MIP2_VERSION, MIP_VERSION, SUPPORTED_MAJORS, register_migration

__all__ = [
    "ERROR_CODES",
    "KV_INPUT_IDS",
    "MANIFEST_MEMBER",
    "MIP2_VERSION",
    "MIP_VERSION",
    "SUPPORTED_MAJORS",
    "VOLATILE_CONFIG_KEYS",
    "AccessPolicy",
    "ArchiveError",
    "Author",
    "Behaviour",
    "BlobEntry",
    "BlobLocation",
    "BlobSink",
    "BlobWriter",
    "EmbeddingSpec",
    "Governance",
    "IntegrityError",
    "LifecycleState",
    "LimitExceededError",
    "MIPError",
    "Manifest",
    "ManifestError",
    "MediaType",
    "MemCube",
    "MemoryRecord",
    "MemoryType",
    "ModelFingerprint",
    "Pack",
    "PackRef",
    "PayloadError",
    "PayloadRef",
    "Provenance",
    "PublicKey",
    "ReadLimits",
    "Signature",
    "SignatureError",
    "SignerCheck",
    "SignerStatus",
    "SigningKey",
    "TrustedKey",
    "TrustedKeys",
    "UnsupportedVersionError",
    "Verification",
    "VerificationResult",
    "Version",
    "VersionRange",
    "Violation",
    "blob_locations",
    "build_manifest",
    "canonical_bytes",
    "canonical_sha256",
    "config_digest",
    "container_major",
    "describe_code",
    "fingerprint_digest",
    "format_timestamp",
    "iter_memory_records",
    "key_id",
    "kv_tensor_name",
    "manifest_blobs",
    "migrate_pack",
    "pack_directory",
    "parse_json",
    "parse_ref",
    "parse_timestamp",
    "read_pack",
    "read_safetensors_header",
    "register_migration",
    "select_blobs",
    "sign_manifest",
    "sign_pack",
    "split_records",
    "tokenizer_digest",
    "validate_payload",
    "verify_or_raise",
    "verify_signatures",
    "weights_digest",
    "write_pack",
]
