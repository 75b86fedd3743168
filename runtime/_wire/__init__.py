"""The registry's JSON wire format, mapped to typed objects in one place.

This package is the only place that knows field names of the registry's answers
(``memstore/API.md``): resolve, error bodies, tokens, ``whoami``, signing keys,
uploads and published versions. Every parser here validates outside data and
raises :class:`runtime.errors.RegistryError` (``registry.bad_response``) or a
protocol error with its own code; nothing else in the runtime touches raw JSON
from the registry.

Not here: HTTP (:mod:`runtime.client`), trust decisions (:mod:`runtime.install`).
"""

from .registry import (
    BlobLocation,
    NamespaceKey,
    PackLocation,
    Resolution,
    TokenInfo,
    WhoAmI,
    parse_error,
    parse_key,
    parse_keys,
    parse_resolution,
    parse_token,
    parse_whoami,
)
from .uploads import (
    BlobUpload,
    PublishCheck,
    PublishResult,
    UploadSession,
    parse_blob_upload,
    parse_blobs_missing,
    parse_publish_check,
    parse_publish_result,
    parse_upload_offset,
    parse_upload_session,
)

__all__ = [
    "BlobLocation",
    "BlobUpload",
    "NamespaceKey",
    "PackLocation",
    "PublishCheck",
    "PublishResult",
    "Resolution",
    "TokenInfo",
    "UploadSession",
    "WhoAmI",
    "parse_blob_upload",
    "parse_blobs_missing",
    "parse_error",
    "parse_key",
    "parse_keys",
    "parse_publish_check",
    "parse_publish_result",
    "parse_resolution",
    "parse_token",
    "parse_upload_offset",
    "parse_upload_session",
    "parse_whoami",
]
