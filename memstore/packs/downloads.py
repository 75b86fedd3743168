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
from django.db import connection
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
    """Count a download of ``version`` (once per day per account or address); True if counted.

    One statement, so one round trip and atomic on its own: the row is inserted unless the
    unique constraint already holds it (``ON CONFLICT DO NOTHING``), and only an inserted row
    adds one to the version's and the pack's counts. It replaced a savepoint, an insert that
    usually failed and a rollback (three round trips and an exception on nearly every
    resolve); the ORM cannot say whether ``ON CONFLICT DO NOTHING`` inserted, hence SQL.
    """
    who = download_who(user=user, address=address)
    day = timezone.now().date()
    downloads = VersionDownload._meta.db_table
    versions = PackVersion._meta.db_table
    packs = Pack._meta.db_table
    sql = f"""
        WITH counted AS (
            INSERT INTO {downloads} (version_id, day, who) VALUES (%s, %s, %s)
            ON CONFLICT DO NOTHING RETURNING version_id
        ), bumped AS (
            UPDATE {versions} SET download_count = download_count + 1
            WHERE id IN (SELECT version_id FROM counted) RETURNING pack_id
        )
        UPDATE {packs} SET download_count = download_count + 1
        WHERE id IN (SELECT pack_id FROM bumped) RETURNING id
    """  # noqa: S608 - table names from the models, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [version.pk, day, who])
        return cursor.fetchone() is not None
