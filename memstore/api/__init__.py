"""What the REST API under /api/v1/ shares across domains; the views live with their domain.

``errors`` (the one DRF exception handler), ``common`` (input/output helpers, the
publish throttle), ``serializers`` (the error body) and ``schema`` (OpenAPI
extensions). It imports no domain, so every domain's views may import it. Each
domain's views, serializers and presenters are ``memstore/<domain>/apis.py``,
``serializers.py`` and ``presenters.py``; the one URL table is :mod:`memstore.urls`.
Not here: any domain's operations.
"""
