"""Appending to the transparency log, and the tree heads and proofs it serves.

:func:`append_event` runs inside the caller's transaction (the publish, the
yank, the key change), so the entry commits with the event or not at all.
Appends are serialised by a transaction-level PostgreSQL advisory lock,
taken only at the end of the caller's transaction, so the lock is held from
the append to the commit. Each append writes the entry, its leaf hash and the
perfect subtrees it completes (one query to read their left halves, one bulk
insert). Not here: which events are logged (:mod:`.events`), HTTP (:mod:`.apis`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from protocol import SigningKey, canonical_bytes
from protocol import merkle as m
from protocol.tree_head import SignedTreeHead

from ..errors import InvalidRequestError, NotFoundError
from .models import LogEntry, LogKey, LogNode

__all__ = [
    "EVENT_KINDS",
    "append_event",
    "consistency_proof",
    "inclusion_proof",
    "log_key",
    "log_size",
    "tree_head",
]

EVENT_KINDS = frozenset({"publish", "yank", "key.register", "key.revoke", "namespace.transfer"})
#: pg_advisory_xact_lock key of the log ("tlog" in ASCII).
_APPEND_LOCK = 0x746C6F67
_KEY_LOCK = 0x746C6F68


def log_size() -> int:
    last = LogEntry.objects.order_by("-index").values_list("index", flat=True).first()
    return 0 if last is None else last + 1


def append_event(
    *,
    kind: str,
    namespace: str,
    subject: str = "",
    fields: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> LogEntry:
    """Append one event; call it inside the transaction that makes the event."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"not a log event kind: {kind!r}")
    when = (at or timezone.now()).astimezone(UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        # Raw SQL, three or four round trips: the append sits inside every publish.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_APPEND_LOCK])
        cursor.execute("SELECT COALESCE(MAX(index) + 1, 0) FROM transparency_logentry")
        (index,) = cursor.fetchone()
        body = canonical_bytes(
            {
                **(fields or {}),
                "index": index,
                "kind": kind,
                "namespace": namespace,
                "at": when.isoformat().replace("+00:00", "Z"),
            }
        )
        leaf = m.leaf_hash(body)
        nodes = [(0, index, leaf), *_completed(cursor, index, leaf)]
        values = ", ".join(["(%s, %s, %s)"] * len(nodes))  # placeholders only
        sql = (
            "WITH e AS (INSERT INTO transparency_logentry (index, kind, namespace, subject, body,"  # noqa: S608
            " leaf_hash, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id)"
            f" INSERT INTO transparency_lognode (level, index, hash) VALUES {values}"
            " RETURNING (SELECT id FROM e)"
        )
        cursor.execute(
            sql,
            [index, kind, namespace, subject, body, leaf.hex(), when,
             *(v for node in nodes for v in node)],
        )  # fmt: skip
        (pk,) = cursor.fetchone()
    return LogEntry(
        pk=pk, index=index, kind=kind, namespace=namespace, subject=subject, body=body,
        leaf_hash=leaf.hex(), created_at=when,
    )  # fmt: skip


def _completed(cursor: Any, index: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees leaf ``index`` completes, from their stored left halves."""
    completed = m.perfect_nodes_completed_by(index)
    if not completed:
        return []
    keys = [(level - 1, 2 * i) for level, i in completed]
    where = " OR ".join(["(level = %s AND index = %s)"] * len(keys))  # placeholders only
    cursor.execute(
        "SELECT level, index, hash FROM transparency_lognode WHERE " + where,  # noqa: S608
        [v for k in keys for v in k],
    )
    lefts = {(level, i): bytes(h) for level, i, h in cursor.fetchall()}
    out, right = [], leaf
    for (level, i), key in zip(completed, keys, strict=True):
        right = m.node_hash(lefts[key], right)
        out.append((level, i, right))
    return out


def _with_nodes(build: Callable[[m.Lookup], Any]) -> Any:
    """Run a proof or root builder over the stored nodes, fetched in one query."""
    keys = m.needed_subtrees(build)
    if not keys:
        return build(lambda level, index: m.EMPTY_ROOT)
    wanted = Q()
    for level, index in keys:
        wanted |= Q(level=level, index=index)
    nodes = {(n.level, n.index): bytes(n.hash) for n in LogNode.objects.filter(wanted)}
    return build(lambda level, index: nodes[(level, index)])


def root_hash(size: int) -> bytes:
    result: bytes = _with_nodes(lambda get: m.subtree_root(0, size, get))
    return result


def log_key() -> SigningKey:
    """The log's signing key, created once (under a lock) on first use."""
    row = LogKey.objects.order_by("pk").first()
    if row is None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_KEY_LOCK])
            row = LogKey.objects.order_by("pk").first()
            if row is None:
                pem = SigningKey.generate().to_pem().decode("ascii")
                row = LogKey.objects.create(private_pem=pem)
    return SigningKey.from_pem(row.private_pem.encode("ascii"))


def tree_head() -> SignedTreeHead:
    """A freshly signed head of the log as it is now."""
    size = log_size()
    head = SignedTreeHead(size, root_hash(size), int(time.time() * 1000), "")
    return head.signed_by(log_key())


def _check_size(size: int) -> None:
    if not 0 <= size <= log_size():
        raise InvalidRequestError(
            f"the log has no tree of size {size}", code="registry.log_bad_size", size=size
        )


def _entry_for(*, leaf: int | None, leaf_hash: str | None, manifest_sha256: str | None) -> LogEntry:
    entries = LogEntry.objects.all()
    if leaf is not None:
        entries = entries.filter(index=leaf)
    elif leaf_hash is not None:
        entries = entries.filter(leaf_hash=leaf_hash)
    elif manifest_sha256 is not None:
        entries = entries.filter(kind="publish", subject=manifest_sha256)
    else:
        raise InvalidRequestError(
            "say which entry: leaf, hash or manifest_sha256", code="registry.invalid_request"
        )
    entry = entries.order_by("index").first()
    if entry is None:
        raise NotFoundError("no such log entry", code="registry.log_entry_not_found")
    return entry


def inclusion_proof(
    *,
    size: int,
    leaf: int | None = None,
    leaf_hash: str | None = None,
    manifest_sha256: str | None = None,
) -> tuple[LogEntry, list[bytes]]:
    """The entry and its audit path in the tree of ``size``."""
    _check_size(size)
    entry = _entry_for(leaf=leaf, leaf_hash=leaf_hash, manifest_sha256=manifest_sha256)
    if entry.index >= size:
        raise InvalidRequestError(
            f"entry {entry.index} is not in the tree of size {size}",
            code="registry.log_bad_size",
            size=size,
        )
    path: list[bytes] = _with_nodes(lambda get: m.inclusion_path(entry.index, size, get))
    return entry, path


def consistency_proof(*, first: int, second: int) -> list[bytes]:
    _check_size(second)
    if not 0 <= first <= second:
        raise InvalidRequestError(
            "first must be between 0 and second", code="registry.log_bad_size", size=first
        )
    proof: list[bytes] = _with_nodes(lambda get: m.consistency_path(first, second, get))
    return proof
