"""An OCI registry as a pack source for the installer: the signed manifest first, blobs on demand.

:meth:`OCIPackSource.open` fetches the OCI manifest (by digest, or by tag with the digest the
registry announces), its config (the MIP manifest bytes) and its signature layers, all small,
bounded and digest-checked, and checks the OCI manifest against the MIP manifest and the reference
(:func:`runtime.oci.mapping.check_pack`). It fetches no payload blob: the caller decides trust on
``manifest_bytes`` and ``signatures`` first, then opens only the blobs it wants with
:meth:`OCIPackSource.open_blob` (from an offset, with HTTP Range: the installer's cache fetch
hashes and resumes) or :meth:`OCIPackSource.open_verified` (verified while streaming).

It implements the installer's ``PackSource`` Protocol (``runtime.install.sources``:
``manifest_bytes``, ``signatures``, ``label``, ``open_blob(entry, offset)``); an entry is
anything with ``sha256`` and ``size`` (``protocol.BlobEntry``).

Not here: trust (``protocol.TrustedKeys``), the cache, installing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from protocol import Manifest, ManifestError, Signature, SignatureError

from ..errors import RegistryError
from .client import OCIClient
from .errors import OCIError
from .mapping import (
    MAX_MANIFEST_BYTES,
    OCIManifest,
    check_pack,
    check_signature_layer,
    parse_manifest,
)
from .reference import OCIReference

__all__ = ["BlobLike", "OCIPackSource"]


class BlobLike(Protocol):
    """What :meth:`OCIPackSource.open_blob` needs of a blob entry (``BlobEntry`` has it)."""

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class OCIPackSource:
    """A MIP pack in an OCI repository, its manifest and signatures fetched and checked."""

    client: OCIClient
    reference: OCIReference
    oci_manifest: OCIManifest
    oci_digest: str
    manifest_bytes: bytes
    manifest: Manifest
    signatures: tuple[Signature, ...]

    @classmethod
    def open(cls, client: OCIClient, reference: OCIReference) -> OCIPackSource:
        """Fetch and check the manifest, config and signatures of ``reference`` (no blobs)."""
        data, digest = client.get_manifest(reference.manifest_ref, limit=MAX_MANIFEST_BYTES)
        oci = parse_manifest(data)
        manifest_bytes = client.read_blob(oci.config.digest, oci.config.size)
        try:
            manifest = Manifest.from_bytes(manifest_bytes)
        except ManifestError as exc:
            raise OCIError(f"the config of {reference} is not a MIP manifest: {exc.message}",
                           code="oci.not_a_pack") from exc  # fmt: skip
        signatures = []
        for layer in oci.signatures:
            raw = client.read_blob(layer.digest, layer.size)
            try:
                signature = Signature.from_bytes(raw)
            except SignatureError as exc:
                raise OCIError(f"signature layer {layer.digest}: {exc.message}",
                               code="oci.bad_manifest") from exc  # fmt: skip
            check_signature_layer(layer, signature)
            signatures.append(signature)
        check_pack(oci, manifest, reference)
        return cls(client, reference, oci, digest, manifest_bytes, manifest, tuple(signatures))

    label = "oci"

    @contextmanager
    def open_blob(self, entry: BlobLike, offset: int = 0) -> Iterator[Iterator[bytes]]:
        """``entry``'s blob from ``offset`` on (HTTP Range), as the installer's ``PackSource``
        promises: unverified (the installer hashes, stops at the size, refuses a mismatch);
        a broken transfer is a retryable ``network.*`` error, resumed from where it stopped."""
        digest = f"sha256:{entry.sha256}"
        try:
            with self.client.open_blob_at(digest, offset) as (start, chunks):
                yield _retryable(skip_to(chunks, offset - start))
        except OCIError as exc:
            raise _as_retryable(exc) from exc

    def open_verified(self, entry: BlobLike) -> AbstractContextManager[Iterator[bytes]]:
        """``entry``'s whole blob, verified while it streams (for callers without a cache)."""
        return self.client.open_blob(f"sha256:{entry.sha256}", entry.size)


def _as_retryable(exc: OCIError) -> Exception:
    if exc.code == "oci.network":
        return RegistryError(exc.message, code="network.download_interrupted")
    return exc


def _retryable(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except OCIError as exc:
        raise _as_retryable(exc) from exc


def skip_to(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """``chunks`` without their first ``count`` bytes (a registry that ignored the Range)."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0
