"""Download counts that repeated or anonymous requests cannot inflate.

A resolve used to add one to the public counts every time, so a loop of
anonymous requests made any pack "popular". Now a download counts once per
version, per UTC day, per *who*: the account for an authenticated request, else
the client's address. The address is stored only as a keyed hash
(HMAC-SHA256 under ``SECRET_KEY``), so the table holds no addresses. The first
resolve of the day by that account or address adds one to the version's and
the pack's counts; every later one adds nothing (the unique row decides, so
concurrent requests count once too).

Not here: who may resolve (:mod:`memstore.packs.selectors`), finding the
client's address behind proxies (the view passes DRF's throttle identity).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..accounts.models import User
from .models import Pack, PackVersion, VersionDownload

__all__ = ["download_who", "version_download_record"]


def download_who(*, user: User | None, address: str | None) -> str:
    """Who a download is counted for: the account, else a keyed hash of the address."""
    if user is not None:
        return f"user:{user.pk}"
    key = str(settings.SECRET_KEY).encode()
    digest = hmac.new(key, (address or "unknown").encode(), hashlib.sha256).hexdigest()
    return f"addr:{digest[:40]}"


def version_download_record(
    *, version: PackVersion, user: User | None, address: str | None
) -> bool:
    """Count a download of ``version`` (once per day per account or address); True if counted."""
    who = download_who(user=user, address=address)
    day = timezone.now().date()
    try:
        with transaction.atomic():
            VersionDownload.objects.create(version=version, day=day, who=who)
            PackVersion.objects.filter(pk=version.pk).update(download_count=F("download_count") + 1)
            Pack.objects.filter(pk=version.pack_id).update(download_count=F("download_count") + 1)
    except IntegrityError:  # counted already today
        return False
    return True
