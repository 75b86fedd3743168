"""URL configuration: the web marketplace at the root, the admin, the REST API under /api/v1/.

Missing pages and server errors answer JSON under ``/api/`` and the
marketplace's HTML pages elsewhere (:mod:`server.handlers`).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("frontend.urls")),  # the web marketplace (frontend/)
    path("admin/", admin.site.urls),
    path("api/v1/", include("memstore.urls")),
]

handler404 = "server.handlers.page_not_found"
handler500 = "server.handlers.server_error"
