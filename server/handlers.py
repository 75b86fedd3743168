"""The project's 404 and 500 handlers (``handler404``/``handler500`` in :mod:`server.urls`).

Under ``/api/`` they answer the API's JSON error shape
``{"error": {"code", "message", "detail"}}`` (:mod:`memstore.api.errors`);
everywhere else the marketplace's HTML pages (:mod:`frontend.views.errors`).
Errors raised inside API views never reach them: DRF's exception handler
answers those. Not here: the error bodies themselves.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from frontend.views import errors as html
from memstore.api import errors as api

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    path = request.path_info
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return api.json_404(request, exception)
    return html.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return api.json_500(request)
    return html.server_error(request)
