"""Input and output serializers of the search API (:mod:`memstore.search.apis`).

Not here: the search itself (:mod:`memstore.search.selectors`).
"""

from __future__ import annotations

from rest_framework import serializers

from .selectors import PACK_SORTS

__all__ = [
    "MemoryHitOut",
    "MemorySearchOut",
    "PackHitOut",
    "PackSearchOut",
    "PackSearchQueryIn",
    "SearchQueryIn",
]


class SearchQueryIn(serializers.Serializer):  # type: ignore[type-arg]
    q = serializers.CharField(max_length=500)
    memory_type = serializers.ChoiceField(
        choices=["plaintext", "activation", "parameter"], required=False
    )
    license = serializers.CharField(required=False, max_length=100)
    price = serializers.ChoiceField(choices=["free", "paid"], required=False)
    base_model = serializers.CharField(required=False, max_length=300)
    namespace = serializers.CharField(required=False, max_length=40)
    pack = serializers.RegexField(r"^[a-z0-9-]{1,40}/[a-z0-9._-]{1,100}$", required=False)
    page = serializers.IntegerField(required=False, default=1, min_value=1, max_value=100)
    page_size = serializers.IntegerField(required=False, default=10, min_value=1, max_value=50)


class PackSearchQueryIn(SearchQueryIn):
    """The pack search also browses: ``q`` may be empty; ``sort`` orders the results."""

    q = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    sort = serializers.ChoiceField(choices=list(PACK_SORTS), required=False, default="relevance")


class MemoryHitOut(serializers.Serializer):  # type: ignore[type-arg]
    pack = serializers.CharField()
    version = serializers.CharField()
    cube_id = serializers.CharField()
    record_id = serializers.CharField()
    memory_type = serializers.CharField()
    snippet = serializers.CharField()
    text = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    license = serializers.CharField()
    paid = serializers.BooleanField()
    score = serializers.FloatField()


class PackHitOut(serializers.Serializer):  # type: ignore[type-arg]
    pack = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    license = serializers.CharField()
    price_amount_minor = serializers.IntegerField()
    price_currency = serializers.CharField(allow_blank=True)
    memory_types = serializers.ListField(child=serializers.CharField())
    tags = serializers.ListField(child=serializers.CharField())
    downloads = serializers.IntegerField()
    score = serializers.FloatField()
    likes = serializers.IntegerField()
    quality = serializers.FloatField(allow_null=True, help_text="recall@5 measured by the registry")
    quality_questions = serializers.IntegerField()
    base_models = serializers.ListField(child=serializers.CharField())
    published_at = serializers.DateTimeField()


class MemorySearchOut(serializers.Serializer):  # type: ignore[type-arg]
    results = MemoryHitOut(many=True)
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total = serializers.IntegerField()
    has_next = serializers.BooleanField()


class PackSearchOut(serializers.Serializer):  # type: ignore[type-arg]
    results = PackHitOut(many=True)
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total = serializers.IntegerField()
    has_next = serializers.BooleanField()
    sort = serializers.CharField()
