"""Test data for commerce: users (through the accounts service), packs and versions.

Pack versions here are rows only (no blobs): commerce never reads pack bytes.
"""

from __future__ import annotations

import hashlib
import itertools

from memstore.accounts.models import Namespace, User
from memstore.accounts.services import user_create
from memstore.packs.models import Pack, PackVersion

_seq = itertools.count(1)


def make_user(username: str | None = None, *, password: str = "pw-Secret-123") -> User:
    return user_create(username=username or f"user{next(_seq)}", password=password)


def make_pack(
    *,
    namespace: Namespace | None = None,
    name: str | None = None,
    price: int = 0,
    currency: str = "EUR",
    version: str = "1.0.0",
    private: bool = False,
) -> Pack:
    if namespace is None:
        namespace = Namespace.objects.get(name=make_user().username)
    pack = Pack.objects.create(
        namespace=namespace, name=name or f"pack{next(_seq)}", private=private
    )
    make_version(pack, version=version, price=price, currency=currency)
    return pack


def make_version(
    pack: Pack,
    *,
    version: str = "1.0.0",
    price: int = 0,
    currency: str = "EUR",
    yanked: bool = False,
) -> PackVersion:
    digest = hashlib.sha256(f"{pack.pk}@{version}".encode()).hexdigest()
    return PackVersion.objects.create(
        pack=pack,
        version=version,
        manifest_bytes=b"{}",
        manifest={},
        manifest_sha256=digest,
        title=f"{pack.name} {version}",
        license="MIT",
        price_amount_minor=price,
        price_currency=currency if price else "",
        file_sha256=digest,
        file_size=123,
        yanked=yanked,
    )
