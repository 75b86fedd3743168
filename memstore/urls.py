"""URL configuration: the REST API under /api/v1/, the admin, and a root page."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from .api.views_root import root

urlpatterns = [
    path("", include("frontend.urls")),  # the web marketplace (frontend/)
    path("", root, name="root"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("memstore.api.urls")),
]

handler404 = "memstore.api.errors.json_404"
handler500 = "memstore.api.errors.json_500"
