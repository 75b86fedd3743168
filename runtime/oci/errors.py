"""The OCI client's errors: one class, :class:`OCIError`, with stable ``oci.*`` codes.

Codes (hints in ``runtime/cli/errors.py``)::

    oci.bad_reference           not oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)
    oci.network                 the registry could not be reached, or the transfer broke
    oci.unauthorized            401: the registry wants credentials
    oci.forbidden               403
    oci.not_found               no manifest under that tag or digest
    oci.blob_missing            the registry lacks a blob the manifest names
    oci.http                    any other refusal (detail: status, the registry's error codes)
    oci.upload_failed           an upload was answered with something the protocol forbids
    oci.too_large               a manifest, config or signature layer over its size limit
    oci.bad_manifest            the OCI manifest is malformed (JSON, descriptors, media types)
    oci.not_a_pack              a well-formed OCI manifest of something that is not a MIP pack
    oci.manifest_digest_mismatch  the manifest's bytes are not the digest asked for or announced
    oci.blob_digest_mismatch    a blob's bytes are not its digest
    oci.blob_size_mismatch      a blob is shorter or longer than its descriptor says
    oci.layers_mismatch         the layers are not exactly the blobs the signed manifest lists
    oci.name_mismatch           the signed pack's name is not the repository's or the annotation's
    oci.version_mismatch        the signed pack's version is not the tag's or the annotation's
    oci.unsigned_pack           pushing a pack that carries no signature

Not here: the errors of signatures and of the pack itself (``protocol``'s
``signature.*``, ``manifest.*``...), which pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from ..errors import MemosError

__all__ = ["OCIError"]


class OCIError(MemosError):
    """An OCI registry refused a request, or served something a MIP client must refuse."""

    code = "oci.error"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, **detail: Any
    ) -> None:
        super().__init__(message, code=code, **detail)
        self.status = status
