"""Public pages: home, search, pack, publisher."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from memstore.accounts.models import Namespace
from memstore.commerce.selectors import user_owns_pack
from memstore.search.selectors import (
    PACK_SORTS,
    SearchFilters,
    memories_search,
    packs_search,
    query_vector,
)
from protocol import MemoryType

from .. import queries
from ..pack_signals import pack_signals
from ..search_limits import throttled_search
from ._common import actor_of, visible_pack

PAGE_SIZE = 10
BROWSE_PAGE_SIZE = 20
SORT_LABELS = {
    "relevance": "Relevance",
    "installs": "Most installed",
    "recent": "Newest",
    "price": "Price, lowest first",
    "quality": "Measured quality",
    "likes": "Most liked",
}


def home(request: HttpRequest) -> HttpResponse:
    data = queries.home(actor=actor_of(request))
    return render(request, "frontend/home.html", {"home": data})


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(value or default)))
    except ValueError:
        return default


@throttled_search
def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    memory_type = request.GET.get("type") or None
    if memory_type not in {t.value for t in MemoryType}:
        memory_type = None
    price = request.GET.get("price") or None
    if price not in ("free", "paid"):
        price = None
    filters = SearchFilters(
        memory_type=memory_type,
        license=(request.GET.get("license") or "").strip()[:100] or None,
        price=price,
        base_model=(request.GET.get("base_model") or "").strip()[:300] or None,
    )
    page = _int(request.GET.get("page"), 1, 1, 100)
    sort = request.GET.get("sort") or ("relevance" if q else "recent")
    if sort not in PACK_SORTS or (sort == "relevance" and not q):
        sort = "relevance" if q else "recent"
    context: dict[str, object] = {
        "q": q,
        "filters": filters,
        "memory_types": [t.value for t in MemoryType],
        "page": page,
        "start": (page - 1) * PAGE_SIZE + 1,
        "facets": queries.search_facets(actor=actor_of(request)),
        "sort": sort,
        "sort_label": SORT_LABELS[sort].lower(),
        "sorts": [(k, v) for k, v in SORT_LABELS.items() if q or k != "relevance"],
    }
    params = request.GET.copy()
    params.pop("page", None)
    context["base_query"] = params.urlencode()
    if not q:  # browsing: every visible pack through the filters, in the chosen order
        context["catalogue"] = packs_search(
            actor=actor_of(request),
            query="",
            filters=filters,
            page=page,
            page_size=BROWSE_PAGE_SIZE,
            sort=sort,
        )
    if q:
        actor = actor_of(request)
        vector = query_vector(q)  # once, for both searches
        memories = memories_search(
            actor=actor, query=q, filters=filters, page=page, page_size=PAGE_SIZE, vector=vector
        )
        packs = (
            packs_search(
                actor=actor,
                query=q,
                filters=filters,
                page=1,
                page_size=5,
                vector=vector,
                sort=sort,
            )
            if page == 1
            else None
        )
        context.update(memories=memories, packs=packs)
    return render(request, "frontend/search.html", context)


def pack_detail(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    pack = visible_pack(request, namespace, name)
    actor = actor_of(request)
    page = queries.pack_page(actor=actor, pack=pack, version=request.GET.get("v"))
    if page is None:
        raise Http404("this pack has no published version")
    owned = user_owns_pack(user=actor.user, pack=pack)
    signals = pack_signals(actor=actor, pack=pack, version=page.version)
    return render(request, "frontend/pack.html", {"p": page, "owned": owned, "signals": signals})


def publisher(request: HttpRequest, namespace: str) -> HttpResponse:
    ns = Namespace.objects.filter(name=namespace).first()
    if ns is None:
        raise Http404("no such publisher")
    data = queries.publisher_page(actor=actor_of(request), namespace=ns)
    return render(request, "frontend/publisher.html", {"pub": data})
