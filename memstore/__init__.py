"""MemStore: the registry for signed MIP packs (the Django domain apps).

``accounts`` (users, namespaces, keys, tokens), ``packs`` (packs, versions,
publishing, entitlements), ``storage`` (content-addressed blobs), ``ingest``
(the Celery pipeline), ``search`` (hybrid search), ``commerce`` (orders,
payments, the ledger) and ``api`` (what every domain's REST views share).
Importing this package does nothing: no Django setup, no network.

Not here: the composition root (settings, URLs, error handlers, the Celery
app, WSGI: the top-level ``server`` package) or the web UI (``frontend``),
which this package never imports.
"""
