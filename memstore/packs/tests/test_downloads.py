"""Download counts: once per version, per day, per account or address (issue 13, limits)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.packs.downloads import download_who, version_download_record
from memstore.packs.models import Pack, PackVersion, VersionDownload
from memstore.packs.services import pack_publish
from memstore.testing.packs import build_pack

from .blobkit import token_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/resolve/acme/docs"


@pytest.fixture
def version(tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any) -> PackVersion:
    pack_file = build_pack(tmp_path, name="acme/docs", keys=[alice[2]], memories=["one"])
    return pack_publish(actor=alice_actor, pack_file=pack_file)


def _counts(version: PackVersion) -> tuple[int, int]:
    return (
        PackVersion.objects.get(pk=version.pk).download_count,
        Pack.objects.get(pk=version.pack_id).download_count,
    )


def test_anonymous_resolves_from_one_address_count_once_a_day(version: PackVersion) -> None:
    client = APIClient()
    for _ in range(5):
        assert client.get(URL, REMOTE_ADDR="203.0.113.7").status_code == 200
    assert _counts(version) == (1, 1)
    assert client.get(URL, REMOTE_ADDR="198.51.100.9").status_code == 200
    assert _counts(version) == (2, 2)


def test_a_forged_forwarded_for_header_does_not_make_a_new_address(version: PackVersion) -> None:
    client = APIClient()
    for i in range(3):
        client.get(URL, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    assert _counts(version) == (1, 1)


def test_an_account_counts_once_a_day_from_any_address(version: PackVersion, alice: Any) -> None:
    client = token_client(alice[0])
    for addr in ("203.0.113.7", "203.0.113.8", "203.0.113.9"):
        assert client.get(URL, REMOTE_ADDR=addr).status_code == 200
    assert _counts(version) == (1, 1)


def test_the_next_day_counts_again_and_no_address_is_stored(version: PackVersion) -> None:
    assert version_download_record(version=version, user=None, address="203.0.113.7")
    assert not version_download_record(version=version, user=None, address="203.0.113.7")
    VersionDownload.objects.update(day=timezone.now().date() - timedelta(days=1))
    assert version_download_record(version=version, user=None, address="203.0.113.7")
    assert _counts(version) == (2, 2)
    who = set(VersionDownload.objects.values_list("who", flat=True))
    assert who == {download_who(user=None, address="203.0.113.7")}
    assert not any("203.0.113.7" in w for w in who)
