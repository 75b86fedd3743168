"""``manage.py memstore_up``: bring the whole registry up on this machine.

Migrates, starts a Celery worker (Redis on 127.0.0.1:6379; without Redis the
tasks run eagerly in this process, and it says so), seeds the demo account and
packs through the real publish path (idempotent), then serves the site until
Ctrl-C, after which it stops the worker it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from memstore.http.no_delay import NoDelayRunserver
from memstore.packs.demo import seed_demo
from server.celery import app as celery_app
from server.config import load_config


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1
        ):
            return True
    except OSError:
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _demo_pack_lines(base: str, refs: list[str]) -> str:
    """The banner's demo pack links: only packs this run seeded or found, so that
    ``--no-model-packs`` does not advertise the KV-cache and LoRA pages (they would 404)."""
    names = {ref.partition("@")[0] for ref in refs}
    shown = [
        (name, kind)
        for name, kind in (
            ("demo/python-stdlib", "plaintext"),
            ("demo/python-stdlib-kv", "KV cache"),
            ("demo/python-text-lora", "LoRA adapter"),
        )
        if name in names
    ]
    return "".join(
        f"  {'Demo packs' if i == 0 else '':<16}{base}/p/{name:<26}({kind})\n"
        for i, (name, kind) in enumerate(shown)
    )


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Migrate, start a Celery worker, seed demo packs and serve the registry (Ctrl-C stops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="set up and seed, then exit")
        parser.add_argument("--no-worker", action="store_true", help="run tasks eagerly instead")
        parser.add_argument(
            "--no-model-packs",
            action="store_true",
            help="skip the KV-cache and LoRA demo packs (they load SmolLM2 the first time)",
        )

    def _prepare_query_encoder(self) -> None:
        """Build the ONNX query encoder now (once per machine), not in the first search."""
        if settings.MEMSTORE_ENCODER != "onnx":
            return
        from encoders import EncoderError, onnx_encoder
        from memstore.search.embedding import model_path

        self.stdout.write("==> preparing the search-query encoder (ONNX; ~15 s the first time)")
        try:
            onnx_encoder(model_path())
        except EncoderError as e:
            self.stdout.write(self.style.WARNING(f"==> queries will run on torch: {e.message}"))

    def handle(self, *args: Any, **options: Any) -> None:
        # Ctrl-C and SIGTERM both end in the clean shutdown below (even when started
        # from a shell that ignores SIGINT for background jobs).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminate)
        config = load_config()
        host, _, port = options["addrport"].rpartition(":")
        if not options["no_serve"] and not _port_free(host or "127.0.0.1", int(port)):
            raise CommandError(
                f"{options['addrport']} is already in use: stop what runs there, or pass "
                "--addrport (scripts/run: MEMSTORE_ADDRPORT=127.0.0.1:8001)"
            )
        self.stdout.write("==> migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self._prepare_query_encoder()
        worker: subprocess.Popen[bytes] | None = None
        broker = settings.CELERY_BROKER_URL
        if options["no_worker"] or settings.CELERY_TASK_ALWAYS_EAGER or not _reachable(broker):
            if not options["no_worker"]:
                self.stdout.write(
                    self.style.WARNING(
                        f"==> Redis is not reachable at {broker}: "
                        "running tasks eagerly in this process"
                    )
                )
            celery_app.conf.task_always_eager = True
            os.environ["MEMSTORE_CELERY_EAGER"] = "1"
        else:
            queue = settings.CELERY_TASK_DEFAULT_QUEUE
            self.stdout.write(f"==> starting a Celery worker (queue {queue!r}, broker {broker})")
            log = open(config.data_dir / "worker.log", "ab")  # noqa: SIM115 - lives as long as the worker
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "server",
                    "worker",
                    "--pool=solo",
                    "--concurrency=1",
                    "-Q",
                    queue,
                    "--loglevel=INFO",
                ],
                env=os.environ.copy(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.stdout.write("==> seeding demo packs (published through the real publish path)")
            started = time.monotonic()
            result = seed_demo(
                config.data_dir / "demo",
                progress=lambda line: self.stdout.write(f"    {line}"),
                with_models=not options["no_model_packs"],
            )
            self.stdout.write(f"    demo packs ready in {time.monotonic() - started:.1f} s")
            for ref in result.published:
                self.stdout.write(f"    published {ref}")
            for ref in result.existing:
                self.stdout.write(f"    already there: {ref}")
            addrport = options["addrport"]
            base = f"http://{addrport}"
            self.stdout.write(
                self.style.SUCCESS(
                    "\nMemStore registry is ready.\n"
                    f"  Open            {base}/\n"
                    f"  API docs        {base}/api/v1/docs/   (schema: {base}/api/v1/schema/)\n"
                    f"  Search          {base}/api/v1/search/memories?q=pickle+untrusted\n"
                    f"  Resolve         {base}/api/v1/resolve/demo/python-tips?spec=^1\n"
                    f"{_demo_pack_lines(base, [*result.published, *result.existing])}"
                    f"  Demo account    username: {result.username}   password: {result.password}\n"
                    f"  CLI             memos login --registry {base}   then   memos publish FILE\n"
                    f"  Worker log      {config.data_dir / 'worker.log'}\n"
                    "Press Ctrl-C to stop.\n"
                )
            )
            if not options["no_serve"]:
                call_command(NoDelayRunserver(), addrport, use_reloader=False, use_threading=True)
        except KeyboardInterrupt:
            pass
        finally:
            if worker is not None:
                self.stdout.write("==> stopping the Celery worker")
                try:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    if worker.poll() is None:
                        os.killpg(worker.pid, signal.SIGKILL)
