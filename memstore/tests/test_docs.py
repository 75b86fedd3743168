"""The API docs (Swagger UI) work offline: every asset is served by this site."""

from __future__ import annotations

import re

from django.contrib.staticfiles import finders
from django.test import Client

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def test_swagger_ui_loads_only_local_assets(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assets = ASSET.findall(page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url
        if url.startswith("/static/"):  # and the file is there to be served
            assert finders.find(url.removeprefix("/static/")) is not None, url
    # Nothing in the page, inline script included, points at another host.
    assert not re.search(r"""["'(]\s*(?:https?:)?//""", page), "an absolute URL in the docs page"
