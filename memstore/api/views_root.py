"""The root page: a placeholder until the web marketplace (frontend/) takes over."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.html import escape


def root(request: HttpRequest) -> HttpResponse:
    links = [
        ("/api/v1/docs/", "API documentation (Swagger UI)"),
        ("/api/v1/schema/", "OpenAPI 3 schema"),
        ("/api/v1/packs/", "Packs (JSON)"),
        ("/api/v1/search/memories?q=memory", "Search memories (JSON)"),
        ("/admin/", "Admin"),
    ]
    items = "".join(f'<li><a href="{href}">{escape(text)}</a></li>' for href, text in links)
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>MemStore</title></head>"
        "<body><h1>MemStore registry</h1><p>Signed MIP memory packs: publish, resolve, search.</p>"
        f"<ul>{items}</ul></body></html>"
    )
    return HttpResponse(body)
