"""The composition root of the MemStore site: Django settings, URLs, error handlers, Celery, WSGI.

It wires the registry (``memstore``: accounts, packs, storage, ingest, search,
commerce and the REST API) and the web marketplace (``frontend``) into one
Django project, and it is the only package that imports both. ``config`` reads
every setting from the environment; ``embedded`` starts the development
PostgreSQL; ``manage.py memstore_up`` brings the whole site up. Importing this
package creates the Celery app (so tasks enqueued by the web use its broker)
and nothing else: no Django setup, no network.

Not here: domain logic (``memstore/<domain>/``) or pages (``frontend/``).
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
