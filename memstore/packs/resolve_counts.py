"""Resolve's download count without a write when this process already made the same one today.

Why: a download counts once per version, per UTC day, per account or address
(:mod:`.downloads`); every later resolve by the same one that day is an ``INSERT ... ON
CONFLICT DO NOTHING`` that changes nothing, yet it was a round trip and a fifth of a resolve's
time (issue 17: an installer, a CI job or a client behind one address resolves the same pack
again and again). A process that has sent that statement for (version, day, who) and seen it
succeed knows the row is there: the next ones are skipped.

Only a row the database holds is remembered, so no count is lost to another process (each
sends its own first statement, which the unique row makes count once). What it does not see
is a row removed from under it the same day (nothing in the registry does that; a version
deleted is not resolved); the table is per process, bounded, and forgotten at midnight UTC.
Not here: the counting rule (:mod:`.downloads`).
"""

from __future__ import annotations

import threading
from datetime import date, datetime

from django.utils import timezone

from ..accounts.models import User
from .downloads import download_who, version_download_record
from .models import PackVersion

__all__ = ["download_record_once"]

#: (version, who) pairs of today one process remembers before it starts again (~4 MB).
REMEMBER = 20_000

_seen: set[tuple[int, datetime, str]] = set()
_seen_day: list[date] = []  # the day _seen is about (empty: none yet)
_lock = threading.Lock()


def download_record_once(*, version: PackVersion, user: User | None, address: str | None) -> None:
    """Count a resolve of ``version`` (:func:`.downloads.version_download_record`), once per
    process per (version, day, who): a later one the same day is known to change nothing."""
    who = download_who(user=user, address=address)
    day = timezone.now().date()
    # The publication time too: a database rebuilt under a running process may reuse an id.
    key = (version.pk, version.published_at, who)
    if key in _seen and _seen_day == [day]:
        return
    version_download_record(version=version, user=user, address=address)
    with _lock:
        if _seen_day != [day] or len(_seen) >= REMEMBER:
            _seen.clear()  # a new day (or too many): forget, the next ones write again
            _seen_day[:] = [day]
        _seen.add(key)


def forget() -> None:
    """Forget every remembered count (for tests that move rows to another day)."""
    with _lock:
        _seen.clear()
        _seen_day.clear()
