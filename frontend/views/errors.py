"""The marketplace's HTML error pages (404 and 500), used by the project's error handlers.

``server.handlers`` calls these for every path outside ``/api/``. The 500
page is rendered without the request (no session, no database: whatever broke
the request may break them too) and falls back to plain HTML if even the
template fails. Not here: deciding between HTML and JSON (``server.handlers``).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseServerError
from django.template import loader

log = logging.getLogger(__name__)

_PLAIN_500 = (
    "<!doctype html><meta charset='utf-8'><title>Server error · MemStore</title>"
    "<h1>Server error</h1><p>Something went wrong on our side. Please try again later.</p>"
)


def not_found_message(exception: Exception | None) -> str:
    """The message of ``Http404("...")`` when a view gave one (never the resolver's internals)."""
    args = getattr(exception, "args", ())
    return args[0] if args and isinstance(args[0], str) else ""


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    body = loader.render_to_string(
        "frontend/404.html", {"message": not_found_message(exception)}, request
    )
    return HttpResponseNotFound(body)


def server_error(request: HttpRequest) -> HttpResponse:
    body: str
    try:
        body = loader.render_to_string("frontend/500.html")
    except Exception:  # the page must not fail in its turn
        log.exception("cannot render the 500 page")
        body = _PLAIN_500
    return HttpResponseServerError(body)
