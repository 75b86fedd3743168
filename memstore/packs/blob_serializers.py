"""Input and output serializers of the blob API (:mod:`memstore.packs.blob_apis`).

Not here: digest rules beyond the shape (the services check them), models as dicts
(:mod:`memstore.packs.presenters`).
"""

from __future__ import annotations

from rest_framework import serializers

from ..api.bounds import MAX_PRICE_MINOR, MAX_SIZE_BYTES
from .serializers import FindingOut

__all__ = [
    "BlobUploadCreateIn",
    "BlobUploadOut",
    "BlobsMissingIn",
    "BlobsMissingOut",
    "PublishManifestIn",
]

_HEX64 = r"^[0-9a-f]{64}$"


class BlobsMissingIn(serializers.Serializer):  # type: ignore[type-arg]
    digests = serializers.ListField(
        child=serializers.RegexField(_HEX64), allow_empty=True, max_length=10_000
    )


class BlobsMissingOut(serializers.Serializer):  # type: ignore[type-arg]
    missing = serializers.ListField(child=serializers.CharField())


class BlobUploadCreateIn(serializers.Serializer):  # type: ignore[type-arg]
    sha256 = serializers.RegexField(_HEX64)
    size = serializers.IntegerField(min_value=0, max_value=MAX_SIZE_BYTES)


class BlobUploadOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    offset = serializers.IntegerField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    max_chunk_bytes = serializers.IntegerField()
    url = serializers.CharField()


class CheckManifestIn(serializers.Serializer):  # type: ignore[type-arg]
    manifest_b64 = serializers.CharField()
    signatures = serializers.ListField(child=serializers.DictField(), allow_empty=True)


class CheckManifestOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    version = serializers.CharField()
    memories_scanned = serializers.IntegerField()
    findings = FindingOut(many=True)


class PublishManifestIn(serializers.Serializer):  # type: ignore[type-arg]
    manifest_b64 = serializers.CharField()
    signatures = serializers.ListField(child=serializers.DictField(), allow_empty=True)
    private = serializers.BooleanField(required=False, default=False)
    price_amount_minor = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_PRICE_MINOR
    )
    price_currency = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=3
    )
