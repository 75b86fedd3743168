"""One rule for an active entitlement, asked everywhere an entitlement counts.

An entitlement whose revocation is dated in the future is still in force until
then (``packs.selectors.active_entitlements``); one revoked in the past is not.
Every place that asks must give the same answer: the API's download
authorization (resolve), the buyer's library, "in your library" on the pack
page, checkout's "already owned", full text in search, and the home page's
most collected packs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from frontend import queries
from memstore.accounts.actor import ANONYMOUS, Actor
from memstore.accounts.models import User
from memstore.accounts.services import api_token_create, user_create
from memstore.commerce import services as commerce_services
from memstore.commerce.errors import AlreadyOwnedError
from memstore.commerce.selectors import library_for_user, user_owns_pack
from memstore.packs.models import Entitlement, Pack
from memstore.packs.services import Price, entitlement_grant, entitlement_revoke, pack_publish
from memstore.search import services as search_services
from memstore.search.selectors import memories_search
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

pytestmark = pytest.mark.django_db

TEXT = "Rotate the signing keys of the namespace every quarter, and revoke the old ones."
VECTOR = np.full(384, 1 / np.sqrt(384), dtype=np.float32)


@pytest.fixture
def paid(tmp_path: Path, local_storage: Any) -> Pack:
    """acme/paid (9 EUR), published for real and indexed with a fixed vector (no model)."""
    user, _, key = publisher("acme", "alice")
    version = pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(tmp_path, name="acme/paid", keys=[key], memories=[TEXT]),
        price=Price(900, "EUR"),
    )
    search_services.memories_index_replace(
        version=version, rows=[("notes", "m1", [], TEXT)], vectors=np.stack([VECTOR])
    )
    search_services.pack_document_replace(version=version, text=TEXT, vector=VECTOR)
    search_services.pack_document_refresh(pack_id=version.pack_id)
    return version.pack


@pytest.fixture
def bob() -> User:
    return user_create(username="bob", password="pw-Secret-123")


def answers(bob: User, pack: Pack) -> dict[str, bool]:
    """Whether each place counts bob's entitlement to ``pack`` as active."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=bob, scopes=('read',))[1]}")
    web = Client()
    web.force_login(bob)
    try:
        commerce_services.order_create(buyer=bob, packs=[pack], idempotency_key="again")
        already_owned = False
    except AlreadyOwnedError:
        already_owned = True
    actor = Actor(user=bob, scopes=frozenset({"read"}))
    hit = memories_search(actor=actor, query="rotate signing keys", vector=VECTOR).results[0]
    return {
        "api download": api.get("/api/v1/resolve/acme/paid").status_code == 200,
        "library": [item.pack for item in library_for_user(user=bob)] == [pack],
        "library page": "memos install acme/paid" in web.get("/accounts/library/").content.decode(),
        "owns": user_owns_pack(user=bob, pack=pack),
        "pack page": "In your library" in web.get("/p/acme/paid").content.decode(),
        "checkout": already_owned,
        "search full text": hit.text == TEXT,
        "most collected": [c.full_name for c in queries.home(actor=ANONYMOUS).featured]
        == ["acme/paid"],
    }


@pytest.mark.parametrize(
    ("revoked_in", "active"),
    [(None, True), (timedelta(days=1), True), (-timedelta(seconds=1), False)],
    ids=["not revoked", "revocation dated in the future", "revoked"],
)
def test_every_place_agrees_on_an_active_entitlement(
    paid: Pack, bob: User, revoked_in: timedelta | None, active: bool
) -> None:
    entitlement = entitlement_grant(user=bob, pack=paid, source="purchase", reference="order-1")
    if revoked_in is not None:
        Entitlement.objects.filter(pk=entitlement.pk).update(revoked_at=timezone.now() + revoked_in)
    found = answers(bob, paid)
    assert found == dict.fromkeys(found, active)


def test_revoking_ends_an_entitlement_whose_revocation_was_dated_later(
    paid: Pack, bob: User
) -> None:
    entitlement = entitlement_grant(user=bob, pack=paid, source="purchase", reference="order-1")
    Entitlement.objects.filter(pk=entitlement.pk).update(
        revoked_at=timezone.now() + timedelta(days=30)
    )
    entitlement_revoke(user=bob, pack=paid)
    entitlement.refresh_from_db()
    assert entitlement.revoked_at is not None and entitlement.revoked_at <= timezone.now()
    found = answers(bob, paid)
    assert found == dict.fromkeys(found, False)
