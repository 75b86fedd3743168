"""MemStore: the registry for signed MIP packs (Django project package).

The Django project (settings, URLs, the Celery app) and its domain apps:
``accounts`` (users, namespaces, keys, tokens), ``packs`` (packs, versions,
publishing, entitlements), ``storage`` (content-addressed blobs), ``ingest``
(the Celery pipeline), ``search`` (hybrid search) and ``api`` (REST glue).
Importing this package does nothing else: no Django setup, no network.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
