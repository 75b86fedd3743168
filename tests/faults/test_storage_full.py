"""The blob volume full: a local backend on a 2 MiB tmpfs.

A publish whose payload does not fit is refused with ``registry.storage_full``
(HTTP 507) and leaves nothing behind: no version, no job, no blob row, no file
(temporary or whole) on the volume. A publish that fits still succeeds and is
indexed. Fails if a full disk becomes a 500, a half-written blob, a version
without its payload or a job that can never finish.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings

from memstore.accounts.actor import Actor
from memstore.errors import StorageFullError
from memstore.ingest import pipeline
from memstore.ingest.models import IngestJob
from memstore.ingest.services import ingest_run
from memstore.packs.models import PackVersion
from memstore.packs.services import pack_publish
from memstore.search.embedding import DIMENSION
from memstore.search.models import IndexedMemory
from memstore.storage.backends import LocalBlobStorage
from memstore.storage.models import Blob
from memstore.storage.services import set_blob_storage
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from memstore.testing.plugin import _missing

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def full_volume(tmp_path: Path, _registry_upload_dir: None) -> Iterator[LocalBlobStorage]:
    """A LocalBlobStorage on a 2 MiB tmpfs of its own, unmounted at teardown."""
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(volume)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        _missing(f"a tmpfs mount (root): {mounted.stderr.decode().strip()}")
    storage = LocalBlobStorage(volume / "blobs", secret=settings.SECRET_KEY)
    set_blob_storage(storage)
    try:
        yield storage
    finally:
        set_blob_storage(None)
        subprocess.run(["umount", str(volume)], check=True)


def _embed(texts: Any, **_: Any) -> np.ndarray:
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    out[:, 0] = 1.0
    return out


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_full_volume_refuses_the_publish_with_its_code_and_leaves_nothing(
    tmp_path: Path, full_volume: LocalBlobStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "embed", _embed)
    monkeypatch.setattr("memstore.ingest.services.embed", _embed)
    user, _, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    sentence = "the keeper logs the weather at the lighthouse every evening "
    big = [f"{i} " + sentence * 60 for i in range(700)]  # about 2.5 MiB of JSONL
    with pytest.raises(StorageFullError) as caught:
        pack_publish(
            actor=actor, pack_file=build_pack(tmp_path, name="acme/big", keys=[key], memories=big)
        )
    assert (caught.value.code, caught.value.status) == ("registry.storage_full", 507)
    assert not PackVersion.objects.exists() and not IngestJob.objects.exists()
    assert not Blob.objects.exists()
    assert _files(full_volume.root) == []  # no temporary file, no blob released half-way

    small = pack_publish(
        actor=actor,
        pack_file=build_pack(tmp_path, name="acme/small", keys=[key], memories=["it fits"]),
    )
    job = ingest_run(version_id=small.pk)
    # The publish enqueued the job too: when an earlier test started the session's Celery
    # worker (a thread of this process), that worker may hold the job's lease, and
    # ingest_run leaves a leased job alone. Either way the job must end done, once.
    deadline = time.monotonic() + 60
    while job.status != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
        job.refresh_from_db()
    assert (job.status, job.memory_count) == ("done", 1)
    assert IndexedMemory.objects.filter(version=small).count() == 1
