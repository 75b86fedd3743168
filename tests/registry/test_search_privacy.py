"""Issue 17 item 6: a stranger's queries never reveal more of a paid memory than the
publisher's preview — no snippet oracle, and no ranking oracle either.

The oracle tried here: one query per word (and per sentence) of a paid pack's hidden
memories, by the selectors, the API and the web search. For a stranger every answer
(hits, order, scores, totals, snippets) must be the same as with those memories gone
from the index: then neither their words nor their vectors can be learnt by searching.
Its owner and a buyer still find them, with the full text. Vectors come from a
bag-of-words fake (``corpus.fake_vector``), so the vector leg would leak too if it
could: a query made of a hidden word is close to the memory that holds it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from memstore.accounts.actor import ANONYMOUS, Actor
from memstore.accounts.services import api_token_create, user_create
from memstore.packs.services import entitlement_grant
from memstore.search.models import IndexedMemory
from memstore.search.selectors import memories_search, packs_search
from memstore.search.tests.corpus import fake_vector, indexed_pack
from memstore.testing.factories import publisher

pytestmark = pytest.mark.django_db

PREVIEW = "Sourdough basics: flour, water and salt, folded every half hour."
HIDDEN = [
    "The vault combination is zebra quartz marmalade, rotated each spring.",
    "Proof the dough overnight at four degrees beside the quartz counter.",
    "Secret glaze: apricot jam thinned with rum and brushed while warm.",
]
FREE = [
    "Flour and water make a starter; feed it daily with fresh flour.",
    "A quartz clock keeps good time in a cold kitchen.",
    "Apricot trees flower early in spring.",
]
CARD = "---\npreview: [p1]\n---\nA paid baking pack."


def _words(texts: list[str]) -> set[str]:
    return {w.strip(".,:;").lower() for t in texts for w in t.split()} - {""}


#: Words only the hidden memories hold (long enough not to occur in a page by chance).
HIDDEN_ONLY = {w for w in _words(HIDDEN) - _words([PREVIEW, CARD, *FREE]) if len(w) >= 5}
QUERIES = sorted(_words(HIDDEN)) + HIDDEN + ["quartz apricot", "zebra OR marmalade", "sourdough"]


@pytest.fixture
def corpus(tmp_path: Path, local_storage: Any) -> dict[str, Any]:
    alice, _, key = publisher("acme", "alice")
    indexed_pack(tmp_path, alice, key, name="acme/kitchen", memories=list(enumerate_ids("f", FREE)))
    paid = indexed_pack(
        tmp_path,
        alice,
        key,
        name="acme/bakery",
        price=900,
        description=CARD,
        memories=[("p1", PREVIEW), *enumerate_ids("h", HIDDEN)],
    )
    return {"alice": alice, "paid": paid}


def enumerate_ids(prefix: str, texts: list[str]) -> list[tuple[str, str]]:
    return [(f"{prefix}{i}", text) for i, text in enumerate(texts, start=1)]


def _selector_answers(actor: Actor) -> list[Any]:
    out = []
    for q in QUERIES:
        vector = fake_vector(q)
        memories = memories_search(actor=actor, query=q, vector=vector, page_size=50)
        packs = packs_search(actor=actor, query=q, vector=vector, page_size=50)
        out.append((q, memories.total, memories.results, packs.total, packs.results))
    return out


def _api_answers(client: APIClient) -> list[Any]:
    return [
        client.get("/api/v1/search/memories", {"q": q, "page_size": "50"}).json() for q in QUERIES
    ]


def _web_answers(client: Client) -> list[Any]:
    out = []
    for q in QUERIES:
        response = client.get("/search", {"q": q})
        assert response.status_code == 200
        html = response.content.decode()
        shown = set(re.findall(r"[a-z]+", html.lower())) - _words([q])  # the query is echoed
        assert not HIDDEN_ONLY & shown, q
        out.append((response.context["memories"], response.context["packs"]))
    return out


def _hide_the_paid_text() -> None:
    """What a stranger may learn from: the index without the non-preview paid memories."""
    deleted, _ = IndexedMemory.objects.filter(record_id__startswith="h").delete()
    assert deleted == len(HIDDEN)


def test_the_preview_memory_is_marked_from_the_card(corpus: dict[str, Any]) -> None:
    rows = IndexedMemory.objects.filter(version=corpus["paid"]).order_by("record_id")
    assert [(m.record_id, m.preview) for m in rows] == [
        ("h1", False),
        ("h2", False),
        ("h3", False),
        ("p1", True),
    ]


def test_strangers_learn_nothing_from_single_word_queries(
    corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("memstore.search.selectors.query_vector", fake_vector)
    monkeypatch.setattr("frontend.views.pages.query_vector", fake_vector)
    carol = user_create(username="carol", password="pw-Secret-123")  # signed in, bought nothing
    token = api_token_create(user=carol, scopes=("read",))[1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    web = Client()
    web.force_login(carol)
    actors = [ANONYMOUS, Actor(user=carol, scopes=frozenset({"read"}))]

    before = (
        [_selector_answers(a) for a in actors],
        _api_answers(APIClient()),
        _api_answers(api),
        _web_answers(Client()),
        _web_answers(web),
    )
    for answers in before[0]:
        for _, _, memories, _, _ in answers:
            for hit in memories:
                assert not _words([hit.snippet]) & HIDDEN_ONLY
                if hit.paid:
                    assert hit.record_id == "p1" and hit.text is None
    assert any(hit.record_id == "p1" for _, _, hits, _, _ in before[0][0] for hit in hits)
    _hide_the_paid_text()
    after = (
        [_selector_answers(a) for a in actors],
        _api_answers(APIClient()),
        _api_answers(api),
        _web_answers(Client()),
        _web_answers(web),
    )
    assert before == after


def test_the_owner_and_a_buyer_match_the_whole_paid_text(corpus: dict[str, Any]) -> None:
    bob = user_create(username="bob", password="pw-Secret-123")
    entitlement_grant(user=bob, pack=corpus["paid"].pack)
    for reader in (Actor(user=corpus["alice"], scopes=None), Actor(user=bob, scopes=None)):
        hits = memories_search(actor=reader, query="zebra", vector=fake_vector("zebra")).results
        assert hits[0].record_id == "h1" and hits[0].text == HIDDEN[0]
    stranger = memories_search(actor=ANONYMOUS, query="zebra", vector=fake_vector("zebra"))
    assert "h1" not in {hit.record_id for hit in stranger.results}
