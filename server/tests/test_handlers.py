"""404 and 500 pages: the API's JSON error shape under /api/, the marketplace's HTML elsewhere."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest
from django.http import Http404, HttpRequest
from django.test import Client
from django.urls import path

from server import urls as project_urls


def _boom(request: HttpRequest) -> NoReturn:
    raise RuntimeError("secret internals")


def _missing(request: HttpRequest) -> NoReturn:
    raise Http404("no such thing here")


# A URL configuration for these tests: the project's, plus views that fail.
urlpatterns = [
    path("boom", _boom),
    path("api/v1/boom", _boom),
    path("gone", _missing),
    *project_urls.urlpatterns,
]
handler404 = project_urls.handler404
handler500 = project_urls.handler500

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def _json_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and set(error) == {"code", "message", "detail"}


def _html(response: Any, status: int) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    body: str = response.content.decode()
    assert "site.css" in body and "MemStore home" in body  # the site's own layout
    return body


def test_unknown_api_urls_answer_the_json_error_shape(client: Client) -> None:
    _json_error(client.get("/api/v1/nothing-here"), 404, "registry.not_found")
    _json_error(client.get("/api/nothing"), 404, "registry.not_found")
    _json_error(client.get("/api"), 404, "registry.not_found")


def test_unknown_site_urls_answer_the_marketplace_404_page(client: Client) -> None:
    body = _html(client.get("/no/such/page"), 404)
    assert "Not found" in body and "There is nothing here." in body
    # Paths that merely start like the API are still pages.
    _html(client.get("/apiary"), 404)


def test_a_views_404_message_is_shown_on_the_html_page(client: Client) -> None:
    assert "no such thing here" in _html(client.get("/gone"), 404)


def test_server_errors_are_json_under_the_api(client: Client) -> None:
    client.raise_request_exception = False
    response = client.get("/api/v1/boom")
    _json_error(response, 500, "registry.internal")
    assert b"secret internals" not in response.content


def test_server_errors_are_the_marketplace_500_page_elsewhere(client: Client) -> None:
    client.raise_request_exception = False
    body = _html(client.get("/boom"), 500)
    assert "Server error" in body and "secret internals" not in body


def test_the_500_page_falls_back_to_plain_html_when_its_template_fails(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("template broke too")

    monkeypatch.setattr("frontend.views.errors.loader.render_to_string", broken)
    client.raise_request_exception = False
    response = client.get("/boom")
    assert response.status_code == 500 and b"Server error" in response.content


def test_the_root_is_the_marketplace_home(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "frontend/home.html" in [t.name for t in response.templates]
