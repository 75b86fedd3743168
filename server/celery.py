"""The Celery application of the registry; configuration comes from Django settings.

Not here: the tasks (``memstore/<domain>/tasks.py``, found by autodiscovery).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")

app = Celery("memstore")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["memstore.ingest", "memstore.packs", "memstore.commerce"])
