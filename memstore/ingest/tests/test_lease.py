"""Claims, leases and fencing of ingestion runs, and the streaming of records in batches."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from memstore.accounts.actor import Actor
from memstore.ingest import pipeline
from memstore.ingest.lease import LeaseLostError, job_claim
from memstore.ingest.models import IngestJob
from memstore.ingest.services import ingest_claim, ingest_mark_retry, ingest_run
from memstore.ingest.tasks import ingest_requeue
from memstore.packs.models import PackVersion
from memstore.packs.services import pack_publish
from memstore.search.embedding import DIMENSION
from memstore.search.models import IndexedMemory
from memstore.storage.backends import _RawBody
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

pytestmark = pytest.mark.django_db

TEXTS = [f"memory number {i} about lighthouses and lenses" for i in range(7)]


def fake_embed(texts: Any, **_: Any) -> np.ndarray:
    """Deterministic unit vectors: these tests are about jobs, not about the model."""
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    for i, text in enumerate(texts):
        out[i, hash(text) % DIMENSION] = 1.0
    return out


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setattr(pipeline, "embed", fake_embed)
    monkeypatch.setattr("memstore.ingest.services.embed", fake_embed)
    settings.MEMSTORE_INGEST_BATCH = 3


@pytest.fixture
def version(tmp_path: Path, local_storage: Any) -> PackVersion:
    user, _, key = publisher("acme", "alice")
    return pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(tmp_path, name="acme/lease", keys=[key], memories=TEXTS),
    )


def _expire(version: PackVersion) -> None:
    IngestJob.objects.filter(version=version).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )


def test_a_live_lease_keeps_a_second_claim_out(version: PackVersion) -> None:
    first = ingest_claim(version_id=version.pk)
    assert first is not None and first.attempt == 1
    assert ingest_claim(version_id=version.pk) is None
    job = IngestJob.objects.get(version=version)
    assert job.status == "running" and job.worker == first.worker and job.leased_until


def test_an_expired_lease_is_claimed_again_with_the_next_attempt(version: PackVersion) -> None:
    first = ingest_claim(version_id=version.pk)
    assert first is not None
    _expire(version)
    second = ingest_claim(version_id=version.pk)
    assert second is not None and second.attempt == first.attempt + 1


def test_a_run_that_lost_its_lease_commits_nothing(version: PackVersion) -> None:
    stale = ingest_claim(version_id=version.pk)
    assert stale is not None
    _expire(version)
    fresh = job_claim(job_id=stale.job_id)
    assert fresh is not None
    with pytest.raises(LeaseLostError) as caught:
        ingest_run(version_id=version.pk, lease=stale)
    assert caught.value.code == "registry.ingest_lease_lost"
    assert not IndexedMemory.objects.filter(version=version).exists()
    # The stale run's retry bookkeeping cannot touch the job either.
    ingest_mark_retry(version_id=version.pk, error="late", lease=stale)
    job = IngestJob.objects.get(version=version)
    assert (job.status, job.attempts, job.error) == ("running", fresh.attempt, "")

    done = ingest_run(version_id=version.pk, lease=fresh)
    assert (done.status, done.memory_count, done.progress) == ("done", len(TEXTS), len(TEXTS))
    assert done.leased_until is None
    assert IndexedMemory.objects.filter(version=version).count() == len(TEXTS)


def test_requeue_picks_running_jobs_whose_lease_expired(
    version: PackVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(
        "memstore.ingest.tasks.ingest_enqueue", lambda *, version_id: sent.append(version_id)
    )
    assert ingest_claim(version_id=version.pk) is not None
    assert ingest_requeue(older_than_seconds=3600) == []
    _expire(version)
    assert ingest_requeue(older_than_seconds=3600) == [version.pk]
    assert sent == [version.pk]


def test_a_rerun_replaces_the_rows_once(version: PackVersion) -> None:
    assert ingest_run(version_id=version.pk).status == "done"
    again = ingest_run(version_id=version.pk, force=True)
    assert (again.status, again.attempts) == ("done", 2)
    assert IndexedMemory.objects.filter(version=version).count() == len(TEXTS)


def test_records_come_in_batches_of_the_configured_size(
    version: PackVersion, local_storage: Any
) -> None:
    payloads = list(version.payloads.values_list("cube_id", "sha256"))
    sizes = [len(b.rows) for b in pipeline.embedded_batches(local_storage, payloads, size=3)]
    assert sizes == [3, 3, 1]


def test_an_embedder_error_reaches_the_writer(
    version: PackVersion, local_storage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(texts: Any, **_: Any) -> np.ndarray:
        raise RuntimeError("embedder down")

    monkeypatch.setattr(pipeline, "embed", broken)
    with pytest.raises(RuntimeError, match="embedder down"):
        ingest_run(version_id=version.pk)
    assert not IndexedMemory.objects.filter(version=version).exists()


class _CountingBody:
    """A StreamingBody stand-in that counts read calls."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads = 0

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        return self._data.read(n)

    def close(self) -> None:
        pass


def test_s3_bodies_are_read_in_large_chunks_not_byte_by_byte() -> None:
    lines = [f'{{"id": "m{i}", "text": "{"x" * 100}"}}\n'.encode() for i in range(500)]
    body = _CountingBody(b"".join(lines))
    stream = io.BufferedReader(_RawBody(body), buffer_size=1024 * 1024)
    assert list(iter(stream.readline, b"")) == lines
    assert body.reads <= 3


def test_batched_writes_mark_the_first_records_as_previews_once(version: PackVersion) -> None:
    # Batches of 3 (the fixture): the default preview rule, the first records in index
    # order, must hold across batches, not per batch.
    ingest_run(version_id=version.pk)
    previews = IndexedMemory.objects.filter(version=version, preview=True).order_by("pk")
    first = IndexedMemory.objects.filter(version=version).order_by("pk")[: previews.count()]
    assert previews.count() == 3
    assert list(previews) == list(first)
