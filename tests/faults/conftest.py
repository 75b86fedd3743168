"""Fixtures of the fault tests: a private Redis, worker processes, a way to wait.

Each fault is real: a Redis server of the test's own (never the shared one on
6379) that the test stops and starts, Celery workers in processes of their own
(:mod:`.fault_worker`) that it SIGKILLs, a filesystem that is full. With
``CI=true`` a missing binary is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memstore.testing.plugin import _free_port, _missing

WORKER = Path(__file__).with_name("fault_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], Any], *, what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (a failure names ``what``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class PrivateRedis:
    """``redis-server`` on a free port, no persistence: a restart loses every message."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(exe).exists():
            _missing("redis-server")
        self.exe = exe
        self.port = _free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._listening, what=f"redis-server on port {self.port}", timeout=20)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def send_to(monkeypatch: pytest.MonkeyPatch) -> Callable[[PrivateRedis, str], None]:
    """Point the ingestion task's ``delay`` (what publish and requeue call) at a private
    broker and queue; everything around it (the on-commit hook, the broker-down
    handling of ``ingest_enqueue``) is the project's."""
    from celery import Celery

    from memstore.ingest import tasks

    def point(redis: PrivateRedis, queue: str) -> None:
        app = Celery("faults", broker=redis.url, set_as_current=False)
        app.conf.update(
            task_publish_retry=False,
            broker_connection_timeout=1,
            broker_connection_max_retries=0,
            broker_connection_retry=False,
        )

        def delay(version_id: int) -> None:
            app.send_task("memstore.ingest.ingest_version", args=[version_id], queue=queue)

        monkeypatch.setattr(tasks.ingest_version, "delay", delay)

    return point


@pytest.fixture
def workers(
    transactional_db: None, local_storage: Any
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start Celery worker processes on the test database and blob folder; all are
    killed at teardown, before the database is flushed."""
    from django.db import connection

    started: list[subprocess.Popen[bytes]] = []

    def start(
        *, broker: str, queue: str, lease: float = 60, batch: int = 4, **misbehave: Any
    ) -> subprocess.Popen[bytes]:
        settings_dict = connection.settings_dict  # now: a test may have moved it
        keys = ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
        cfg = {
            "database": {k: settings_dict[k] for k in keys},
            "broker": broker,
            "queue": queue,
            "lease": lease,
            "batch": batch,
            "blobs": str(local_storage.root),
            **misbehave,
        }
        env = {**os.environ, "MEMSTORE_FAULT_WORKER": json.dumps(cfg), "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, str(WORKER)], env=env, cwd=ROOT)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
