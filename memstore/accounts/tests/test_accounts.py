"""Account services and selectors: tokens stored hashed, scopes, keys, names."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from memstore.accounts.actor import Actor
from memstore.accounts.models import ApiToken, Role, SigningKey
from memstore.accounts.selectors import api_token_by_raw, has_role, trusted_public_keys
from memstore.accounts.services import (
    api_token_create,
    api_token_revoke,
    membership_set,
    namespace_create,
    signing_key_register,
    signing_key_revoke,
    user_create,
)
from memstore.errors import ConflictError, ForbiddenError, InvalidRequestError
from protocol import SigningKey as ProtocolKey

pytestmark = pytest.mark.django_db


def test_tokens_are_stored_hashed_and_revocable() -> None:
    user = user_create(username="dora", password="pw")
    token, raw = api_token_create(user=user, scopes=["read"])
    assert raw.startswith("mst_") and raw not in token.digest and token.prefix == raw[:10]
    assert not ApiToken.objects.filter(digest=raw).exists()
    assert api_token_by_raw(raw) == token
    api_token_revoke(actor=Actor(user=user), token_id=token.pk)
    assert api_token_by_raw(raw) is None


def test_expired_token_is_refused() -> None:
    user = user_create(username="dora", password="pw")
    _, raw = api_token_create(user=user, expires_at=timezone.now() - timedelta(seconds=1))
    assert api_token_by_raw(raw) is None


def test_unknown_scope_is_refused() -> None:
    user = user_create(username="dora", password="pw")
    with pytest.raises(InvalidRequestError):
        api_token_create(user=user, scopes=["admin"])


def test_scopes_of_an_actor() -> None:
    actor = Actor(user=None, scopes=frozenset({"publish:*"}))
    assert actor.has_scope("publish:acme") and not actor.has_scope("read")
    assert Actor(user=None, scopes=None).has_scope("anything")


def test_user_gets_a_personal_namespace_and_names_are_unique() -> None:
    user = user_create(username="dora", password="pw")
    assert has_role(user=user, namespace=user.namespaces.get(name="dora"), at_least=Role.OWNER)
    with pytest.raises(ConflictError):
        user_create(username="dora", password="pw")
    with pytest.raises(ConflictError):
        namespace_create(actor=Actor(user=user), name="dora")
    with pytest.raises(InvalidRequestError):
        namespace_create(actor=Actor(user=user), name="Not Valid")
    with pytest.raises(InvalidRequestError):  # "dora\n" is not a second spelling of "dora"
        namespace_create(actor=Actor(user=user), name="team\n")
    with pytest.raises(InvalidRequestError):
        user_create(username="eve\n", password="pw")


def test_only_owners_manage_members_and_maintainers_manage_keys() -> None:
    owner = user_create(username="olga", password="pw")
    ns = namespace_create(actor=Actor(user=owner), name="team")
    member = user_create(username="max", password="pw")
    membership_set(actor=Actor(user=owner), namespace=ns, username="max", role=Role.MEMBER)
    key = ProtocolKey.generate()
    with pytest.raises(ForbiddenError):
        signing_key_register(
            actor=Actor(user=member), namespace=ns, public_key=key.public_key.to_text()
        )
    with pytest.raises(ForbiddenError):
        membership_set(actor=Actor(user=member), namespace=ns, username="max", role=Role.OWNER)
    membership_set(actor=Actor(user=owner), namespace=ns, username="max", role=Role.MAINTAINER)
    row = signing_key_register(
        actor=Actor(user=member), namespace=ns, public_key=key.public_key.to_pem().decode()
    )
    assert row.keyid == key.keyid and row.public_key == key.public_key.to_text()


def test_key_rotation_and_revocation_dates(alice: Any) -> None:
    user, ns, old = alice
    alice_actor = Actor(user=user, scopes=frozenset({"admin:acme"}))  # keys need admin:NS
    new = ProtocolKey.generate()
    signing_key_register(actor=alice_actor, namespace=ns, public_key=new.public_key.to_text())
    assert set(trusted_public_keys(namespace=ns)) == {old.keyid, new.keyid}
    later = timezone.now() + timedelta(days=1)
    signing_key_revoke(actor=alice_actor, namespace=ns, keyid=old.keyid, reason="rotated", at=later)
    assert set(trusted_public_keys(namespace=ns)) == {old.keyid, new.keyid}  # not yet
    assert set(trusted_public_keys(namespace=ns, at=later + timedelta(seconds=1))) == {new.keyid}
    assert SigningKey.objects.get(keyid=old.keyid).revocation_reason == "rotated"
    signing_key_revoke(actor=alice_actor, namespace=ns, keyid=new.keyid)
    with pytest.raises(ConflictError):
        signing_key_register(actor=alice_actor, namespace=ns, public_key=new.public_key.to_text())
