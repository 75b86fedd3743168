# mypy: disable-error-code="no-untyped-call,attr-defined,misc,type-arg,unused-ignore"
"""factory_boy factories for the registry's models."""

from __future__ import annotations

from typing import Any, cast

import factory
from factory.django import DjangoModelFactory

from protocol import SigningKey as ProtocolSigningKey

from ..accounts.models import Membership, Namespace, Role, SigningKey, User


class UserFactory(DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password("pw-for-tests")


class NamespaceFactory(DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = Namespace
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"ns{n}")
    kind = Namespace.Kind.ORGANIZATION


class MembershipFactory(DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = Membership

    namespace = factory.SubFactory(NamespaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class SigningKeyFactory(DjangoModelFactory):  # type: ignore[misc]
    """A registered key; ``private`` (not a field) is the matching protocol SigningKey."""

    class Meta:
        model = SigningKey
        exclude = ("private",)

    namespace = factory.SubFactory(NamespaceFactory)
    private = factory.LazyFunction(ProtocolSigningKey.generate)
    keyid = factory.LazyAttribute(lambda o: o.private.keyid)
    public_key = factory.LazyAttribute(lambda o: o.private.public_key.to_text())
    label = "test key"


def publisher(
    namespace: str = "acme", username: str = "alice", **extra: Any
) -> tuple[User, Namespace, ProtocolSigningKey]:
    """A user owning a namespace with one registered key; returns (user, namespace, private key)."""
    user = cast(User, UserFactory(username=username))
    ns = cast(Namespace, NamespaceFactory(name=namespace))
    Membership.objects.get_or_create(namespace=ns, user=user, defaults={"role": Role.OWNER})
    private = ProtocolSigningKey.generate()
    SigningKey.objects.create(
        namespace=ns, keyid=private.keyid, public_key=private.public_key.to_text(), label="k1"
    )
    return user, ns, private
