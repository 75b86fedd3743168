"""The mapping of a MIP pack onto an OCI image manifest, both ways (pure: no I/O).

:func:`build_manifest` turns a pack's signed MIP manifest bytes, its blobs and
its signatures into the canonical bytes of an OCI image manifest;
:func:`parse_manifest` reads such bytes from a registry, strictly, into an
:class:`OCIManifest`; :func:`check_pack` checks what the signed MIP manifest
says against the OCI manifest and the reference it was fetched by. The rules
are written down in ``runtime/oci/MAPPING.md``.

Not here: HTTP (:mod:`.client`), trust (``protocol.TrustedKeys``: the OCI
manifest is not signed; only the MIP manifest in its config is).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocol import (
    BlobEntry,
    Manifest,
    ManifestError,
    Signature,
    Version,
    canonical_bytes,
    manifest_blobs,
    parse_json,
)

from .errors import OCIError
from .reference import OCIReference

__all__ = [
    "ANNOTATION_CUBES",
    "ANNOTATION_KEYID",
    "ANNOTATION_MEDIA_TYPE",
    "ANNOTATION_MIP_VERSION",
    "ANNOTATION_TITLE",
    "ANNOTATION_VERSION",
    "ARTIFACT_TYPE",
    "BLOB_MEDIA_TYPE",
    "CONFIG_MEDIA_TYPE",
    "MAX_CONFIG_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_SIGNATURES",
    "MAX_SIGNATURE_BYTES",
    "OCI_MANIFEST_MEDIA_TYPE",
    "SIGNATURE_MEDIA_TYPE",
    "Descriptor",
    "OCIManifest",
    "build_manifest",
    "check_pack",
    "check_signature_layer",
    "descriptor_for",
    "parse_manifest",
    "tag_for_version",
]

OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.memstore.mip.pack.v2"
CONFIG_MEDIA_TYPE = "application/vnd.memstore.mip.manifest.v2+json"
BLOB_MEDIA_TYPE = "application/vnd.memstore.mip.blob"
SIGNATURE_MEDIA_TYPE = "application/vnd.memstore.mip.signature.v1+json"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_MIP_VERSION = "dev.memstore.mip.version"
ANNOTATION_MEDIA_TYPE = "dev.memstore.mip.media-type"
ANNOTATION_CUBES = "dev.memstore.mip.cubes"
ANNOTATION_KEYID = "dev.memstore.mip.keyid"

#: What a client reads into memory before it has checked anything: bounded.
MAX_MANIFEST_BYTES = 4 * 1024**2
MAX_CONFIG_BYTES = 4 * 1024**2
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_SIGNATURES = 64
MAX_LAYERS = 10_000

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: media type, ``sha256:<hex>`` digest, size, annotations."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None

    @property
    def sha256(self) -> str:
        return self.digest.removeprefix("sha256:")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}  # fmt: skip
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class OCIManifest:
    """A parsed OCI manifest of a MIP pack: its config, blob layers and signature layers."""

    config: Descriptor
    blobs: tuple[Descriptor, ...]
    signatures: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    artifact_type: str | None


def descriptor_for(data: bytes, media_type: str, **annotations: str) -> Descriptor:
    """The descriptor of ``data`` (its sha256 and size)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Descriptor(media_type, digest, len(data), dict(annotations) or None)


def tag_for_version(version: str) -> str:
    """The tag a version is pushed under by default: ``+`` is not allowed in tags (``_``)."""
    return version.replace("+", "_")


def build_manifest(
    manifest_bytes: bytes, blobs: Sequence[BlobEntry], signatures: Sequence[Signature]
) -> bytes:
    """Canonical (RFC 8785) bytes of the OCI manifest for a pack: deterministic, so pushing
    the same pack twice gives the same manifest digest."""
    manifest = Manifest.from_bytes(manifest_bytes)
    layers = [
        Descriptor(BLOB_MEDIA_TYPE, f"sha256:{b.sha256}", b.size,
                   {ANNOTATION_MEDIA_TYPE: b.media_type, ANNOTATION_CUBES: ",".join(b.cubes)})
        for b in sorted(blobs, key=lambda b: b.sha256)
    ]  # fmt: skip
    layers += [
        descriptor_for(s.to_bytes(), SIGNATURE_MEDIA_TYPE, **{ANNOTATION_KEYID: s.keyid})
        for s in sorted({s.keyid: s for s in signatures}.values(), key=lambda s: s.keyid)
    ]
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": descriptor_for(manifest_bytes, CONFIG_MEDIA_TYPE).to_dict(),
        "layers": [d.to_dict() for d in layers],
        "annotations": {
            ANNOTATION_TITLE: manifest.name,
            ANNOTATION_VERSION: manifest.version,
            ANNOTATION_MIP_VERSION: manifest.mip_version,
        },
    }
    return canonical_bytes(doc)


# ---------------------------------------------------------------- parsing outside data


def _bad(message: str, code: str = "oci.bad_manifest") -> OCIError:
    return OCIError(f"the OCI manifest is refused: {message}", code=code)


def _annotations(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(f"{where}.annotations must map strings to strings")
    return dict(value)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _bad(f"{where}.mediaType must be a string")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise _bad(f"{where}.digest must be sha256:<64 lower-case hex digits>")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _bad(f"{where}.size must be a non-negative integer")
    return Descriptor(media_type, digest, size, _annotations(value.get("annotations"), where))


def parse_manifest(data: bytes) -> OCIManifest:
    """Strictly parse OCI manifest bytes of a MIP pack; raise ``oci.*`` on anything else."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _bad(f"{len(data)} bytes, over {MAX_MANIFEST_BYTES}", code="oci.too_large")
    try:
        doc = parse_json(data, what="OCI manifest")
    except ManifestError as exc:
        raise _bad(exc.message) from exc
    if not isinstance(doc, dict):
        raise _bad("not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _bad("schemaVersion must be 2")
    if doc.get("mediaType", OCI_MANIFEST_MEDIA_TYPE) != OCI_MANIFEST_MEDIA_TYPE:
        raise _bad(f"mediaType {doc.get('mediaType')!r} is not an OCI image manifest",
                   code="oci.not_a_pack")  # fmt: skip
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and artifact_type != ARTIFACT_TYPE:
        raise _bad(f"artifactType {artifact_type!r} is not {ARTIFACT_TYPE}", code="oci.not_a_pack")
    config = _descriptor(doc.get("config"), "config")
    if config.media_type != CONFIG_MEDIA_TYPE:
        raise _bad(f"config.mediaType {config.media_type!r} is not {CONFIG_MEDIA_TYPE}",
                   code="oci.not_a_pack")  # fmt: skip
    if config.size > MAX_CONFIG_BYTES:
        raise _bad(f"the config is {config.size} bytes, over {MAX_CONFIG_BYTES}",
                   code="oci.too_large")  # fmt: skip
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        raise _bad(f"layers must be a list of at most {MAX_LAYERS}")
    blobs: list[Descriptor] = []
    signatures: list[Descriptor] = []
    for i, item in enumerate(layers):
        layer = _descriptor(item, f"layers[{i}]")
        if layer.media_type == BLOB_MEDIA_TYPE:
            blobs.append(layer)
        elif layer.media_type == SIGNATURE_MEDIA_TYPE:
            if layer.size > MAX_SIGNATURE_BYTES:
                raise _bad(f"layers[{i}] (a signature) is {layer.size} bytes", code="oci.too_large")
            signatures.append(layer)
        else:
            raise _bad(f"layers[{i}].mediaType {layer.media_type!r} is not a MIP layer type")
    if len(signatures) > MAX_SIGNATURES:
        raise _bad(f"{len(signatures)} signature layers, over {MAX_SIGNATURES}",
                   code="oci.too_large")  # fmt: skip
    if len({b.digest for b in blobs}) != len(blobs):
        raise _bad("a blob layer is listed twice")
    return OCIManifest(
        config,
        tuple(blobs),
        tuple(signatures),
        _annotations(doc.get("annotations"), "manifest"),
        artifact_type,
    )


def check_signature_layer(layer: Descriptor, signature: Signature) -> None:
    """A signature layer's keyid annotation, when present, names the key that signed."""
    named = (layer.annotations or {}).get(ANNOTATION_KEYID)
    if named is not None and named != signature.keyid:
        raise _bad(f"signature layer {layer.digest} says key {named[:12]}… but holds another's")


def _repository_names(repository: str, name: str) -> bool:
    return repository == name or repository.endswith("/" + name)


def check_pack(oci: OCIManifest, manifest: Manifest, reference: OCIReference) -> None:
    """Check the signed MIP ``manifest`` against the unsigned OCI manifest and the reference.

    * the repository is the pack's name (``REPO`` is ``NS/NAME`` or ends in ``/NS/NAME``),
      and the title annotation, when present, too: ``oci.name_mismatch``;
    * a tag that is a version (``1.2.0``, ``1.2.0_build`` for ``+build``), and the version
      annotation when present, are the pack's version: ``oci.version_mismatch``;
    * the blob layers are exactly the manifest's distinct blobs, digest and size:
      ``oci.layers_mismatch``.
    """
    title = oci.annotations.get(ANNOTATION_TITLE)
    if not _repository_names(reference.repository, manifest.name) or (
        title is not None and title != manifest.name
    ):
        raise OCIError(
            f"{reference} holds the signed pack {manifest.name!r} (annotated {title!r}), "
            f"not a pack named after repository {reference.repository!r}: refused",
            code="oci.name_mismatch", name=manifest.name, repository=reference.repository,
        )  # fmt: skip
    annotated = oci.annotations.get(ANNOTATION_VERSION)
    tag_version = _tag_version(reference.tag)
    if (annotated is not None and annotated != manifest.version) or (
        tag_version is not None and tag_version != Version.parse(manifest.version)
    ):
        raise OCIError(
            f"{reference} holds {manifest.name}@{manifest.version} (annotated {annotated!r}), "
            "not the version its tag names: refused",
            code="oci.version_mismatch", version=manifest.version, tag=reference.tag,
        )  # fmt: skip
    want = {(f"sha256:{b.sha256}", b.size) for b in manifest_blobs(manifest)}
    have = {(d.digest, d.size) for d in oci.blobs}
    if want != have:
        missing = sorted(d for d, _ in want - have)
        extra = sorted(d for d, _ in have - want)
        raise OCIError(
            f"the layers are not the signed manifest's blobs (missing {len(missing)}, "
            f"unlisted {len(extra)}): refused",
            code="oci.layers_mismatch", missing=missing, unlisted=extra,
        )  # fmt: skip


def _tag_version(tag: str | None) -> Version | None:
    """The version a tag names (``1.2.0``, or ``1.2.0_b1`` for ``1.2.0+b1``), if it names one."""
    if tag is None:
        return None
    try:
        return Version.parse(tag.replace("_", "+"))
    except ManifestError:  # ref.invalid: a tag such as "latest" names no version
        return None
