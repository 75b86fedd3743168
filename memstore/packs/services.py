"""Writes about packs: yank, deprecate, delete, privacy, downloads, entitlements.

Publishing lives in :mod:`memstore.packs.publishing` (a ``.memcube`` file or a
signed manifest over uploaded blobs) and blob references in
:mod:`memstore.packs.blob_refs`; their public names are re-exported here, so
``from memstore.packs.services import pack_publish, Price`` keeps working.
A lifecycle change of a pack's live versions (yank, unyank, delete) is told to
the subscribers after it commits. Not here: reads (``selectors``), the periodic
blob collection task (``tasks``).
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from ..accounts.actor import Actor
from ..accounts.models import User
from .blob_publish import pack_publish_manifest
from .blob_refs import blobs_collect_garbage, blobs_release
from .models import Entitlement, Pack, PackVersion
from .publishing import (
    FREE,
    Price,
    notify_versions_changed,
    pack_publish,
    require_publisher,
    subscribe,
)
from .selectors import active_entitlements

__all__ = [
    "FREE",
    "Price",
    "blobs_collect_garbage",
    "blobs_release",
    "entitlement_grant",
    "entitlement_revoke",
    "pack_deprecate",
    "pack_publish",
    "pack_publish_manifest",
    "pack_set_private",
    "subscribe",
    "version_delete",
    "version_unyank",
    "version_yank",
    "version_yanked",
]


# --------------------------------------------------------------------------- lifecycle


def _require_maintainer(actor: Actor, pack: Pack) -> None:
    require_publisher(actor, pack.namespace)


#: Sent inside the yank's transaction (``version=``): the transparency log records it.
version_yanked = Signal()


def version_yank(*, actor: Actor, version: PackVersion, reason: str) -> PackVersion:
    _require_maintainer(actor, version.pack)
    with transaction.atomic():
        PackVersion.objects.filter(pk=version.pk).update(
            yanked=True, yanked_reason=reason[:500], yanked_at=timezone.now()
        )
        version.refresh_from_db()
        version_yanked.send(sender=PackVersion, version=version)
    notify_versions_changed(version.pack)
    return version


def version_unyank(*, actor: Actor, version: PackVersion) -> PackVersion:
    _require_maintainer(actor, version.pack)
    PackVersion.objects.filter(pk=version.pk).update(yanked=False, yanked_reason="", yanked_at=None)
    version.refresh_from_db()
    notify_versions_changed(version.pack)
    return version


def version_delete(*, actor: Actor, version: PackVersion) -> None:
    """Soft delete: the bytes stop being served; the name@version stays reserved."""
    _require_maintainer(actor, version.pack)
    PackVersion.objects.filter(pk=version.pk, deleted_at__isnull=True).update(
        deleted_at=timezone.now()
    )
    notify_versions_changed(version.pack)


def pack_deprecate(*, actor: Actor, pack: Pack, deprecated: bool, message: str = "") -> Pack:
    _require_maintainer(actor, pack)
    pack.deprecated = deprecated
    pack.deprecation_message = message[:500] if deprecated else ""
    pack.save(update_fields=["deprecated", "deprecation_message"])
    return pack


def pack_set_private(*, actor: Actor, pack: Pack, private: bool) -> Pack:
    _require_maintainer(actor, pack)
    pack.private = private
    pack.save(update_fields=["private"])
    return pack



def entitlement_grant(
    *, user: User, pack: Pack, source: str = "grant", reference: str | None = None
) -> Entitlement:
    """Give ``user`` the right to download ``pack`` (idempotent by user+pack and reference)."""
    with transaction.atomic():
        if reference is not None:
            existing = Entitlement.objects.filter(reference=reference).first()
            if existing is not None:
                return existing
        entitlement, created = Entitlement.objects.get_or_create(
            user=user, pack=pack, defaults={"source": source, "reference": reference}
        )
        if not created and entitlement.revoked_at is not None:
            entitlement.revoked_at = None
            entitlement.source = source
            entitlement.save(update_fields=["revoked_at", "source"])
        return entitlement


def entitlement_revoke(*, user: User, pack: Pack) -> None:
    """End ``user``'s entitlement to ``pack`` now, if it is in force (one dated later too)."""
    active_entitlements(user=user, pack=pack).update(revoked_at=timezone.now())
