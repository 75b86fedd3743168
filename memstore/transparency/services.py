"""Appending to the transparency log, and the tree heads and proofs it serves.

:func:`append_event` runs inside the caller's transaction (the publish, the
yank, the key change), so the entry commits with the event or not at all.
Appends are serialised by the one :class:`LogHead` row, locked ``FOR UPDATE``
at the end of the caller's transaction (so it is held from the append to the
commit); it holds the size and the right edge of the tree, so an append is two
statements: lock and read it, then one insert of the entry, the leaf and the
perfect subtrees it completes, with the head's update.
Not here: which events are logged (:mod:`.events`), HTTP (:mod:`.apis`).
"""

from __future__ import annotations

import functools
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
from .models import LogEntry, LogHead, LogKey, LogNode

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
        index, frontier = _lock_head(cursor)
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
        nodes, frontier = _push(index, leaf, frontier)
        values = ", ".join(["(%s, %s, %s)"] * len(nodes))  # placeholders only
        sql = (
            "WITH e AS (INSERT INTO transparency_logentry (index, kind, namespace, subject, body,"  # noqa: S608
            " leaf_hash, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id),"
            f" n AS (INSERT INTO transparency_lognode (level, index, hash) VALUES {values}),"
            " h AS (UPDATE transparency_loghead SET size = %s, frontier = %s WHERE id = 1)"
            " SELECT id FROM e"
        )
        cursor.execute(
            sql,
            [index, kind, namespace, subject, body, leaf.hex(), when,
             *(v for node in nodes for v in node), index + 1, b"".join(frontier)],
        )  # fmt: skip
        (pk,) = cursor.fetchone()
    return LogEntry(
        pk=pk, index=index, kind=kind, namespace=namespace, subject=subject, body=body,
        leaf_hash=leaf.hex(), created_at=when,
    )  # fmt: skip


def _lock_head(cursor: Any) -> tuple[int, list[bytes]]:
    """Lock the head row (made on first use) and return the size and the right edge."""
    for _ in range(2):
        cursor.execute("SELECT size, frontier FROM transparency_loghead WHERE id = 1 FOR UPDATE")
        row = cursor.fetchone()
        if row is not None:
            raw = bytes(row[1])
            return int(row[0]), [raw[i : i + 32] for i in range(0, len(raw), 32)]
        cursor.execute(
            "INSERT INTO transparency_loghead (id, size, frontier) VALUES (1, 0, '')"
            " ON CONFLICT (id) DO NOTHING"
        )
    raise RuntimeError("the log head row cannot be made")  # pragma: no cover


def _push(
    index: int, leaf: bytes, frontier: list[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Nodes leaf ``index`` adds (itself and the subtrees it completes) and the new edge."""
    nodes, edge, right = [(0, index, leaf)], list(frontier), leaf
    for level, i in m.perfect_nodes_completed_by(index):
        right = m.node_hash(edge.pop(), right)
        nodes.append((level, i, right))
    edge.append(right)
    return nodes, edge


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
    pem = LogKey.objects.order_by("pk").values_list("private_pem", flat=True).first()
    if pem is None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_KEY_LOCK])
            pem = LogKey.objects.order_by("pk").values_list("private_pem", flat=True).first()
            if pem is None:
                pem = SigningKey.generate().to_pem().decode("ascii")
                LogKey.objects.create(private_pem=pem)
    return _key_from_pem(pem)


@functools.lru_cache(maxsize=4)
def _key_from_pem(pem: str) -> SigningKey:
    # Parsed once per process: every tree head is signed with it. Keyed by the PEM itself,
    # read on every call, so a replaced key is used from the next request on.
    return SigningKey.from_pem(pem.encode("ascii"))


def tree_head(key: SigningKey | None = None) -> SignedTreeHead:
    """A freshly signed head of the log as it is now (the root from the head row's edge).

    ``key``: the :func:`log_key` the caller already holds (the API serves its public half
    beside the head), so that it is read once per request.
    """
    row = LogHead.objects.filter(pk=1).values_list("size", "frontier").first()
    size, raw = (int(row[0]), bytes(row[1])) if row else (0, b"")
    edge = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    root = edge[-1] if edge else m.EMPTY_ROOT
    for left in reversed(edge[:-1]):
        root = m.node_hash(left, root)
    head = SignedTreeHead(size, root, int(time.time() * 1000), "")
    return head.signed_by(key if key is not None else log_key())


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
