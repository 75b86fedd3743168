"""Read models of the marketplace (frontend/queries.py) at a scale the view tests do not reach."""

from __future__ import annotations

import pytest

from frontend.queries import search_facets
from memstore.accounts.actor import ANONYMOUS
from memstore.commerce.tests.factories import make_pack, make_version
from memstore.packs.models import PackVersion

pytestmark = pytest.mark.django_db


def test_search_facets_see_every_license_and_model_however_many_versions_share_one() -> None:
    crowded = make_pack(name="crowded")
    template = make_version(crowded, version="2.0.0")
    PackVersion.objects.bulk_create(
        PackVersion(
            pack=crowded,
            version=f"3.0.{i}",
            manifest_bytes=b"{}",
            manifest={},
            manifest_sha256=template.manifest_sha256,
            title="crowded",
            license="MIT",
            base_models=["smollm2"],
            file_sha256=template.file_sha256,
            file_size=1,
        )
        for i in range(1100)
    )
    late = make_pack(name="late")
    PackVersion.objects.filter(pack=late).update(
        license="Zlib", base_models=["tiny-llama", "smollm2"]
    )
    hidden = make_pack(name="hidden", private=True)
    PackVersion.objects.filter(pack=hidden).update(license="Secret", base_models=["secret-model"])

    facets = search_facets(actor=ANONYMOUS)
    assert facets.licenses == ["MIT", "Zlib"]
    assert facets.base_models == ["smollm2", "tiny-llama"]
    assert len(search_facets(actor=ANONYMOUS, limit=1).base_models) == 1
