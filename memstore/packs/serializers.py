"""Input and output serializers of the packs API (:mod:`memstore.packs.apis`).

Publishing (one request or an upload session), packs and versions, and
resolving a reference. Not here: validation that needs the database (the
services do it) or turning models into dicts (:mod:`memstore.packs.presenters`).
"""

from __future__ import annotations

from rest_framework import serializers

from ..accounts.serializers import KeyOut
from ..api.bounds import MAX_PAGE, MAX_PRICE_MINOR, MAX_SIZE_BYTES

__all__ = [
    "BlobOut",
    "DeprecateIn",
    "FindingOut",
    "IngestOut",
    "PackFileOut",
    "PackListItemOut",
    "PackListOut",
    "PackListQueryIn",
    "PackOut",
    "PayloadOut",
    "PriceOut",
    "PublishIn",
    "PublishOut",
    "ResolveOut",
    "ResolveQueryIn",
    "SignatureOut",
    "UploadCompleteIn",
    "UploadCreateIn",
    "UploadOut",
    "VersionOut",
    "VersionSummaryOut",
    "YankIn",
]


class PriceOut(serializers.Serializer):  # type: ignore[type-arg]
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField(allow_blank=True)


class IngestOut(serializers.Serializer):  # type: ignore[type-arg]
    status = serializers.CharField()
    memories = serializers.IntegerField()
    attempts = serializers.IntegerField(required=False)
    error = serializers.CharField(required=False, allow_blank=True)
    progress = serializers.IntegerField(required=False)


class PublishIn(serializers.Serializer):  # type: ignore[type-arg]
    file = serializers.FileField()
    private = serializers.BooleanField(required=False, default=False)
    price_amount_minor = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_PRICE_MINOR
    )
    price_currency = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=3
    )


class FindingOut(serializers.Serializer):  # type: ignore[type-arg]
    """One publish-time scan finding (secret, personal_data, prompt_injection), masked."""

    kind = serializers.CharField()
    rule = serializers.CharField()
    cube_id = serializers.CharField()
    record_id = serializers.CharField()
    excerpt = serializers.CharField(allow_blank=True)


class PublishOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    signed_by = serializers.ListField(child=serializers.CharField())
    ingest = IngestOut()
    url = serializers.CharField()
    findings = FindingOut(many=True)


class UploadCreateIn(serializers.Serializer):  # type: ignore[type-arg]
    size = serializers.IntegerField(min_value=1, max_value=MAX_SIZE_BYTES)
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}$")


class UploadOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    offset = serializers.IntegerField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    max_chunk_bytes = serializers.IntegerField()


class UploadCompleteIn(serializers.Serializer):  # type: ignore[type-arg]
    private = serializers.BooleanField(required=False, default=False)
    price_amount_minor = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_PRICE_MINOR
    )
    price_currency = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=3
    )


class VersionSummaryOut(serializers.Serializer):  # type: ignore[type-arg]
    version = serializers.CharField()
    published_at = serializers.DateTimeField()
    yanked = serializers.BooleanField()
    yanked_reason = serializers.CharField()
    price = PriceOut()
    downloads = serializers.IntegerField()


class PackOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    private = serializers.BooleanField()
    deprecated = serializers.BooleanField()
    deprecation_message = serializers.CharField()
    downloads = serializers.IntegerField()
    latest = serializers.CharField(allow_null=True)
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    license = serializers.CharField(allow_blank=True)
    versions = VersionSummaryOut(many=True)


class PayloadOut(serializers.Serializer):  # type: ignore[type-arg]
    path = serializers.CharField()
    media_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.CharField(required=False)


class VersionOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    license = serializers.CharField()
    published_at = serializers.DateTimeField()
    yanked = serializers.BooleanField()
    yanked_reason = serializers.CharField(allow_blank=True)
    price = PriceOut()
    tags = serializers.ListField(child=serializers.CharField())
    memory_types = serializers.ListField(child=serializers.CharField())
    base_models = serializers.ListField(child=serializers.CharField())
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    downloads = serializers.IntegerField()
    payloads = PayloadOut(many=True)
    ingest = IngestOut()


class YankIn(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class DeprecateIn(serializers.Serializer):  # type: ignore[type-arg]
    deprecated = serializers.BooleanField(required=False, default=True)
    message = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class PackListQueryIn(serializers.Serializer):  # type: ignore[type-arg]
    namespace = serializers.CharField(required=False)
    page = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_PAGE)
    page_size = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)


class PackListItemOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    private = serializers.BooleanField()
    deprecated = serializers.BooleanField()
    downloads = serializers.IntegerField()


class PackListOut(serializers.Serializer):  # type: ignore[type-arg]
    results = PackListItemOut(many=True)
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total = serializers.IntegerField()


class ResolveQueryIn(serializers.Serializer):  # type: ignore[type-arg]
    spec = serializers.CharField(required=False, default="*", allow_blank=True, max_length=200)


class SignatureOut(serializers.Serializer):  # type: ignore[type-arg]
    alg = serializers.CharField()
    keyid = serializers.CharField()
    sig = serializers.CharField()


class PackFileOut(serializers.Serializer):  # type: ignore[type-arg]
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.CharField()
    url_expires_at = serializers.DateTimeField()


class BlobOut(serializers.Serializer):  # type: ignore[type-arg]
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    media_type = serializers.CharField()
    url = serializers.CharField()


class ResolveOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    version = serializers.CharField()
    spec = serializers.CharField()
    published_at = serializers.DateTimeField()
    yanked = serializers.BooleanField()
    yanked_reason = serializers.CharField(allow_blank=True)
    deprecated = serializers.BooleanField()
    deprecation_message = serializers.CharField(allow_blank=True)
    private = serializers.BooleanField()
    price = PriceOut()
    manifest = serializers.DictField()
    manifest_b64 = serializers.CharField()
    manifest_sha256 = serializers.CharField()
    signatures = SignatureOut(many=True)
    keys = KeyOut(many=True)
    pack = PackFileOut(allow_null=True)
    payloads = PayloadOut(many=True)
    blobs = BlobOut(many=True)
    ingest = IngestOut()
