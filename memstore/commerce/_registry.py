"""Thin adapters onto the registry (``memstore.packs``): entitlements and current versions.

The registry owns the ``Entitlement`` model, its services and the rules for
versions; this module is the one place where commerce calls them, so that a
change on their side touches only this file.
"""

from __future__ import annotations

from ..accounts.models import User
from ..errors import NotFoundError
from ..packs import services as pack_services
from ..packs.models import Entitlement, Pack, PackVersion
from ..packs.selectors import active_entitlements, version_select


def current_version(pack: Pack) -> PackVersion | None:
    """The version a buyer pays for: the highest that is neither yanked nor deleted."""
    try:
        return version_select(pack=pack, spec="*")
    except NotFoundError:
        return None


def entitlement_active(*, user: User, pack: Pack) -> Entitlement | None:
    """``user``'s entitlement to ``pack`` if it is in force (the registry's one rule)."""
    return active_entitlements(user=user, pack=pack).first()


def entitlement_grant(*, user: User, pack: Pack, source: str, reference: str) -> Entitlement:
    """Grant (or re-grant after a refund) ``user``'s right to ``pack``. Idempotent."""
    return pack_services.entitlement_grant(user=user, pack=pack, source=source, reference=reference)


def entitlement_revoke(*, user: User, pack: Pack) -> None:
    """Revoke ``user``'s right to ``pack`` (a no-op when already revoked)."""
    pack_services.entitlement_revoke(user=user, pack=pack)
