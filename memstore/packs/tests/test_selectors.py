"""Version selection (SemVer ranges, yanked, deleted) and download authorization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memstore.accounts.actor import ANONYMOUS, Actor
from memstore.accounts.services import user_create
from memstore.errors import ForbiddenError, GoneError, NotAuthenticatedError, NotFoundError
from memstore.packs.selectors import check_download, pack_get, version_select
from memstore.packs.services import (
    Price,
    entitlement_grant,
    entitlement_revoke,
    pack_publish,
    version_delete,
    version_yank,
)
from memstore.testing.packs import build_pack

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any) -> dict[str, Any]:
    out = {}
    for v in ("0.9.0", "1.0.0", "1.2.0", "1.3.0-rc.1", "2.0.0"):
        out[v] = pack_publish(
            actor=alice_actor,
            pack_file=build_pack(tmp_path, name="acme/docs", version=v, keys=[alice[2]]),
        )
    return out


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("*", "2.0.0"),
        ("^1", "1.2.0"),
        ("~1.0", "1.0.0"),
        ("<1", "0.9.0"),
        ("1.3.0-rc.1", "1.3.0-rc.1"),
        (">=1.3.0-rc.1,<2", "1.3.0-rc.1"),
    ],
)
def test_version_select_follows_semver(versions: dict[str, Any], spec: str, expected: str) -> None:
    assert version_select(pack=versions["1.0.0"].pack, spec=spec).version == expected


def test_yanked_and_deleted_versions(versions: dict[str, Any], alice_actor: Actor) -> None:
    pack = versions["1.0.0"].pack
    version_yank(actor=alice_actor, version=versions["2.0.0"], reason="bad")
    assert version_select(pack=pack, spec="*").version == "1.2.0"
    assert version_select(pack=pack, spec="2.0.0").yanked
    version_delete(actor=alice_actor, version=versions["1.2.0"])
    assert version_select(pack=pack, spec="^1").version == "1.0.0"
    with pytest.raises(GoneError):
        version_select(pack=pack, spec="1.2.0")
    with pytest.raises(NotFoundError) as err:
        version_select(pack=pack, spec="^3")
    assert err.value.code == "registry.no_matching_version"


def test_download_authorization(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    paid = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/paid", keys=[alice[2]]),
        price=Price(amount_minor=100, currency="USD"),
    )
    secret = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/secret", keys=[alice[2]]),
        private=True,
    )
    bob = user_create(username="bob", password="pw")
    bob_actor = Actor(user=bob, scopes=frozenset({"read"}))
    with pytest.raises(NotAuthenticatedError):
        check_download(actor=ANONYMOUS, version=paid)
    with pytest.raises(ForbiddenError):
        check_download(actor=bob_actor, version=paid)
    entitlement_grant(user=bob, pack=paid.pack, reference="order-7")
    entitlement_grant(user=bob, pack=paid.pack, reference="order-7")  # idempotent
    check_download(actor=bob_actor, version=paid)
    entitlement_revoke(user=bob, pack=paid.pack)
    with pytest.raises(ForbiddenError):
        check_download(actor=bob_actor, version=paid)
    check_download(actor=alice_actor, version=paid)  # publishers need no entitlement
    with pytest.raises(NotFoundError):
        pack_get(actor=bob_actor, namespace="acme", name="secret")
    with pytest.raises(NotFoundError):
        check_download(actor=bob_actor, version=secret)
    assert pack_get(actor=alice_actor, namespace="acme", name="secret") == secret.pack
