"""Issue 13 item 7: integers from a request are bounded (400 registry.out_of_range),
never a 500 or a number that overflows later."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from memstore.api.bounds import MAX_PAGE, MAX_PRICE_MINOR, MAX_SIZE_BYTES
from memstore.api.tests.clients import bearer_client

pytestmark = pytest.mark.django_db


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.fixture
def publisher_client(alice: Any) -> APIClient:
    return bearer_client(alice[0], ["read", "publish:acme"])


@pytest.mark.parametrize("page", [10**20, 2**63, MAX_PAGE + 1])
def test_a_huge_page_number_is_out_of_range_not_a_500(db: None, page: int) -> None:
    error = _error(APIClient().get(f"/api/v1/packs/?page={page}"), 400)
    assert error["code"] == "registry.out_of_range"
    assert "page" in error["detail"]["fields"]


def test_the_last_allowed_page_answers_an_empty_listing(db: None) -> None:
    response = APIClient().get(f"/api/v1/packs/?page={MAX_PAGE}")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


@pytest.mark.parametrize("price", [2**63 - 1, 2**63, 2**70, MAX_PRICE_MINOR + 1])
def test_a_price_past_the_maximum_is_refused(publisher_client: APIClient, price: int) -> None:
    body = {"manifest_b64": "e30=", "signatures": [], "price_amount_minor": price}
    response = publisher_client.post("/api/v1/packs/publish-manifest", body, format="json")
    error = _error(response, 400)
    assert error["code"] == "registry.out_of_range"
    assert "price_amount_minor" in error["detail"]["fields"]


@pytest.mark.parametrize("price", [2**63, 2**70])
def test_a_huge_price_on_upload_complete_is_refused(
    publisher_client: APIClient, price: int
) -> None:
    url = "/api/v1/uploads/00000000-0000-0000-0000-000000000000/complete"
    response = publisher_client.post(url, {"price_amount_minor": price}, format="json")
    assert _error(response, 400)["code"] == "registry.out_of_range"


@pytest.mark.parametrize("path", ["/api/v1/uploads/", "/api/v1/blobs/uploads"])
def test_a_huge_announced_size_is_refused(publisher_client: APIClient, path: str) -> None:
    body = {"size": 2**70, "sha256": "0" * 64}
    error = _error(publisher_client.post(path, body, format="json"), 400)
    assert error["code"] == "registry.out_of_range"
    assert MAX_SIZE_BYTES < 2**63
