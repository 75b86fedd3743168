"""``memos push PACK oci://HOST/REPO:TAG``: a signed pack into an OCI repository, idempotently.

The pack is read and checked with ``protocol.read_pack`` (MIP 1 or 2); a MIP 2 pack's raw blobs
are then sent straight from the pack file (:mod:`runtime.pack_blobs`: no extracted copy). Then the
config (the signed MIP manifest bytes), every signature and every distinct blob
are pushed, each only if a ``HEAD`` says the registry lacks it, and the OCI manifest (canonical
bytes, so the same pack always has the same manifest digest) last, under the tag. The manifest is
pushed only after every blob it names is present, so a killed push leaves no tag pointing at
missing content, and pushing again uploads only what is still missing.

Not here: the HTTP calls (:mod:`.client`), the manifest's shape (:mod:`.mapping`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol import manifest_blobs

from ..pack_blobs import BlobFile, checked_pack
from .client import OCIClient
from .errors import OCIError
from .mapping import (
    CONFIG_MEDIA_TYPE,
    SIGNATURE_MEDIA_TYPE,
    build_manifest,
    check_pack,
    descriptor_for,
    parse_manifest,
    tag_for_version,
)
from .reference import OCIReference

__all__ = ["PushResult", "push_pack"]

#: Called with (bytes done, bytes total) as the push advances.
PushProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class PushResult:
    """What a push did: the reference and manifest digest, and which blobs it uploaded."""

    reference: str
    name: str
    version: str
    manifest_digest: str
    uploaded: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    bytes_uploaded: int = 0
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "name": self.name, "version": self.version,
            "manifest_digest": self.manifest_digest, "uploaded": list(self.uploaded),
            "skipped": list(self.skipped), "bytes_uploaded": self.bytes_uploaded,
        }  # fmt: skip


def push_pack(
    path: Path,
    reference: OCIReference,
    client: OCIClient,
    *,
    progress: PushProgress | None = None,
) -> PushResult:
    """Push the pack file at ``path`` to ``reference`` (tag default: the pack's version)."""
    with checked_pack(Path(path)) as checked:
        pack = checked.pack
        manifest = pack.manifest
        if not pack.signatures:
            raise OCIError(f"{path} is not signed; an OCI pack is installed by its signatures",
                           code="oci.unsigned_pack")  # fmt: skip
        if reference.tag is None:
            reference = reference.with_tag(tag_for_version(manifest.version))
        blobs = manifest_blobs(manifest)
        oci_bytes = build_manifest(pack.manifest_bytes, blobs, pack.signatures)
        # The same checks an installer makes: refuse to push what nobody could install.
        check_pack(parse_manifest(oci_bytes), manifest, reference)
        items: list[tuple[str, int, BlobFile | bytes]] = []
        config = descriptor_for(pack.manifest_bytes, CONFIG_MEDIA_TYPE)
        items.append((config.digest, config.size, pack.manifest_bytes))
        for signature in pack.signatures:
            raw = signature.to_bytes()
            items.append((descriptor_for(raw, SIGNATURE_MEDIA_TYPE).digest, len(raw), raw))
        items += [(f"sha256:{b.sha256}", b.size, checked.blobs[b.sha256]) for b in blobs]
        total = sum(size for _, size, _ in items)
        done = sent = 0
        uploaded: list[str] = []
        skipped: list[str] = []
        for digest, size, source in items:
            if client.has_blob(digest):
                skipped.append(digest)
            else:
                client.upload_blob(digest, size, source)
                uploaded.append(digest)
                sent += size
            done += size
            if progress:
                progress(done, total)
        tag = reference.tag
        assert tag is not None
        digest = client.put_manifest(tag, oci_bytes)
    return PushResult(str(reference), manifest.name, manifest.version, digest,
                      tuple(uploaded), tuple(skipped), sent)  # fmt: skip
