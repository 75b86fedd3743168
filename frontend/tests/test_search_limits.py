"""Issue 17 item 3: the web search has the API's rate limits, with a clear 429 page."""

from __future__ import annotations

from typing import Any

import pytest

from frontend.search_limits import AnonSearchThrottle, UserSearchThrottle
from memstore.search.selectors import SearchPage

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_search(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The searches the view ran (faked: the limit is what is tested)."""
    ran: list[str] = []

    def fake(**kwargs: object) -> SearchPage:
        ran.append(str(kwargs["query"]))
        return SearchPage(results=[], page=1, page_size=10, total=0, has_next=False)

    monkeypatch.setattr("frontend.views.pages.memories_search", fake)
    monkeypatch.setattr("frontend.views.pages.packs_search", fake)
    monkeypatch.setattr("frontend.views.pages.query_vector", lambda q: [0.0] * 384)
    return ran


def test_the_api_rates_apply_to_the_web_search() -> None:
    from rest_framework.settings import api_settings

    rates = api_settings.DEFAULT_THROTTLE_RATES
    assert str(AnonSearchThrottle().rate) == str(rates["anon"])
    assert str(UserSearchThrottle().rate) == str(rates["user"])


def test_a_stranger_over_the_limit_gets_a_429_page_and_no_search(
    client: Any, monkeypatch: pytest.MonkeyPatch, no_search: list[str]
) -> None:
    monkeypatch.setattr(AnonSearchThrottle, "rate", "3/min", raising=False)
    statuses = [client.get("/search", {"q": f"keys {i}"}).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/search", {"q": "keys again"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert b"Too many searches" in refused.content
    assert len(no_search) == 3 * 2  # memories and packs, for the three allowed
    # Browsing without a query runs no search and is not limited.
    assert client.get("/search").status_code == 200
    # Another address has its own budget.
    assert client.get("/search", {"q": "keys"}, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_a_signed_in_user_is_limited_per_user(
    client: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch, no_search: list[str]
) -> None:
    monkeypatch.setattr(UserSearchThrottle, "rate", "2/min", raising=False)
    client.force_login(django_user_model.objects.create_user(username="u1", password="x-Y-12345"))
    statuses = [client.get("/search", {"q": "keys"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_web_search_does_not_spend_the_api_budget(
    client: Any, monkeypatch: pytest.MonkeyPatch, no_search: list[str]
) -> None:
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonSearchThrottle, "rate", "2/min", raising=False)
    monkeypatch.setattr(AnonRateThrottle, "rate", "2/min", raising=False)
    for _ in range(2):
        assert client.get("/search", {"q": "keys"}).status_code == 200
    assert client.get("/api/v1/search/packs", {"q": ""}).status_code == 200
