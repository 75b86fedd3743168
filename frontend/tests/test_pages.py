from __future__ import annotations

import pytest

from frontend.models import FeaturedPack
from memstore.accounts.actor import Actor
from memstore.packs.services import version_yank

pytestmark = pytest.mark.django_db


def test_home_without_packs_invites_to_publish(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"No packs yet" in response.content


def test_pages_name_an_icon_and_favicon_ico_redirects_to_it(client):
    assert b'rel="icon" href="/static/frontend/favicon.svg"' in client.get("/").content
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/frontend/favicon.svg"


def test_home_lists_new_popular_and_featured_packs(client, publish):
    docs = publish("docs", title="Docs Pack", description="Answers about docs.")
    publish("faq", title="FAQ Pack", price=500)
    FeaturedPack.objects.create(pack=docs.pack, position=1)
    html = client.get("/").content.decode()
    # Two packs fit one section: no "New" and "Popular" repeating the same cards.
    assert "Featured" in html and ">Packs<" in html
    assert ">New<" not in html and ">Popular<" not in html
    assert "Docs Pack" in html and "FAQ Pack" in html
    assert "€5.00" in html and "Free" in html


def test_private_packs_are_hidden_from_strangers(client, publish):
    publish("secret", title="Secret Pack", private=True)
    assert b"Secret Pack" not in client.get("/").content
    assert client.get("/p/acme/secret").status_code == 404


def test_pack_page_shows_card_versions_cubes_signer_and_install(client, publish, acme):
    publish(
        "docs",
        title="Docs Pack",
        description=(
            "# Hello\n\nSome **bold** text.<script>alert(1)</script>\n\n[x](javascript:alert(1))"
        ),
        price=1999,
    )
    v2 = publish("docs", version="1.1.0", title="Docs Pack", price=1999)
    version_yank(actor=Actor(user=acme[0], scopes=None), version=v2, reason="broken index")
    response = client.get("/p/acme/docs")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>bold</strong>" in html
    readme = html.split('<article class="readme"')[1].split("</article>")[0]
    assert "<script>" not in readme and "javascript:" not in readme
    assert "1.1.0" in html and "yanked" in html and "broken index" in html
    assert v2.file_sha256[:16] in html
    assert "notes" in html and "plaintext" in html and "any model" in html
    assert "✓ verified" in html and acme[2].keyid[:16] in html
    assert '<code id="install-cmd">memos install acme/docs</code>' in html
    assert "Buy €19.99" in html


def test_pack_page_for_a_free_pack_offers_a_one_click_claim(bob_client, publish):
    publish("free")
    html = bob_client.get("/p/acme/free").content.decode()
    assert "Add to library — free" in html


def test_publisher_page_lists_packs_and_keys(client, publish, acme):
    publish("docs", title="Docs Pack")
    html = client.get("/u/acme").content.decode()
    assert "Docs Pack" in html and acme[2].keyid[:24] in html and "active" in html
    assert client.get("/u/nobody").status_code == 404


def test_search_without_a_query_shows_the_form_with_license_suggestions(client, publish):
    publish("docs", license="CC-BY-4.0")
    publish("secret", license="Secret-License", private=True)
    response = client.get("/search")
    html = response.content.decode()
    assert response.status_code == 200 and 'name="q"' in html
    assert '<option value="CC-BY-4.0">' in html and "Secret-License" not in html


def test_search_runs_the_registry_search_with_filters(client, monkeypatch):
    calls = {}

    def fake_memories(**kwargs):
        calls["memories"] = kwargs
        from memstore.search.selectors import MemoryHit, SearchPage

        hit = MemoryHit(
            pack="acme/docs",
            version="1.0.0",
            cube_id="notes",
            record_id="m1",
            memory_type="plaintext",
            snippet="A short snip…",
            text=None,
            tags=["t"],
            license="MIT",
            paid=True,
            score=0.1,
        )
        return SearchPage(results=[hit], page=1, page_size=10, total=1, has_next=False)

    def fake_packs(**kwargs):
        from memstore.search.selectors import SearchPage

        return SearchPage(results=[], page=1, page_size=5, total=0, has_next=False)

    monkeypatch.setattr("frontend.views.pages.memories_search", fake_memories)
    monkeypatch.setattr("frontend.views.pages.packs_search", fake_packs)
    monkeypatch.setattr("frontend.views.pages.query_vector", lambda q: [0.0] * 384)
    url = "/search?q=rotate+keys&type=plaintext&price=paid&license=MIT&base_model=x"
    html = client.get(url).content.decode()
    filters = calls["memories"]["filters"]
    assert (filters.memory_type, filters.price, filters.license, filters.base_model) == (
        "plaintext",
        "paid",
        "MIT",
        "x",
    )
    assert "A short snip…" in html and "preview only" in html


def test_unknown_filter_values_are_ignored(client, monkeypatch):
    seen = {}
    from memstore.search.selectors import SearchPage

    def fake(**kwargs):
        seen.update(kwargs)
        return SearchPage(results=[], page=1, page_size=10, total=0, has_next=False)

    monkeypatch.setattr("frontend.views.pages.memories_search", fake)
    monkeypatch.setattr("frontend.views.pages.packs_search", fake)
    monkeypatch.setattr("frontend.views.pages.query_vector", lambda q: [0.0] * 384)
    response = client.get("/search?q=x&type=bogus&price=cheap&page=zzz")
    assert response.status_code == 200
    assert seen["filters"].memory_type is None and seen["filters"].price is None
    assert b"Nothing matched" in response.content


def test_missing_pages_are_html_not_json(client):
    response = client.get("/p/acme/nothing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html") and b"Not found" in response.content


def test_pack_page_shows_the_model_a_kv_cache_fits(client):
    from memstore.commerce.tests.factories import make_pack

    pack = make_pack(name="kv", price=0)
    version = pack.versions.get()
    version.manifest = {
        "mip_version": "1.0",
        "name": f"{pack.namespace.name}/kv",
        "version": "1.0.0",
        "title": "KV",
        "license": "MIT",
        "created_at": "2025-01-01T00:00:00Z",
        "cubes": [
            {
                "id": "prefix",
                "memory_type": "activation",
                "lifecycle": "activated",
                "version": 1,
                "created_at": "2025-01-01T00:00:00Z",
                "payloads": [
                    {
                        "path": "payloads/prefix/kv.safetensors",
                        "size": 2048,
                        "sha256": "ab" * 32,
                        "media_type": "application/vnd.mip.kv-cache+safetensors",
                    }
                ],
                "model": {
                    "architecture": "LlamaForCausalLM",
                    "model_id": "HuggingFaceTB/SmolLM2-135M",
                    "config_sha256": "c" * 64,
                    "tokenizer_sha256": "d" * 64,
                    "dtype": "float32",
                    "num_layers": 30,
                    "num_kv_heads": 3,
                    "head_dim": 64,
                },
            }
        ],
    }
    version.save()
    html = client.get(f"/p/{pack.full_name}").content.decode()
    assert "HuggingFaceTB/SmolLM2-135M" in html and "LlamaForCausalLM, float32, 30 layers" in html
    assert "2.0 KB" in html and "activation" in html
    assert "unsigned" in html  # no signature rows: never shown as verified


def test_pack_page_flags_a_signature_that_does_not_verify(client, publish):
    import base64

    version = publish("docs")
    sig = version.signatures.get()
    sig.value_b64 = base64.b64encode(b"\0" * 64).decode()
    sig.save()
    html = client.get("/p/acme/docs").content.decode()
    assert "✗ invalid" in html and "✓ verified" not in html
