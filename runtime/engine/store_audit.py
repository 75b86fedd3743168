"""The store's append-only audit log and the traces reads leave: use counters and activation.

``audit`` rows are hash-chained (each row's hash covers the previous one), so
rows are appended in one order by whichever connection holds the write lock;
:meth:`AuditQueries.audit_many` appends a batch in one transaction (the
deferred usage log, :mod:`runtime.engine.usage`, writes a batch of searches
this way). A read is behaviour, not content: :meth:`AuditQueries.touch` and
:meth:`AuditQueries.activate` change counters and the lifecycle state in
place and never add a row to ``memory_versions``.

Not here: the memories' content and versions (:mod:`runtime.engine.store`),
deciding what is recorded (:mod:`runtime.engine.engine`, ``usage``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .lifecycle import State
from .rows import dumps
from .schema import Database
from .types import AuditEntry, from_epoch

__all__ = ["AuditQueries", "AuditRow"]

_ZERO_HASH = "0" * 64

#: (at, actor, action, target, detail) of one audit row to append.
AuditRow = tuple[float, str | None, str, str | None, Mapping[str, Any]]


def _chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _body(at: float, actor: str | None, action: str, target: str | None, detail: Any) -> str:
    return dumps({"at": at, "actor": actor, "action": action, "target": target, "detail": detail})


class AuditQueries(Database):
    """The audit log and in-place use counters (see the module docstring)."""

    # ---- uses

    def touch(self, rowids: Sequence[int], at: float) -> None:
        """Record one use of each memory (behaviour counters; no new version)."""
        with self.write():
            self.db.executemany(
                "UPDATE memories SET access_count = access_count + 1, last_accessed_at = ? "
                "WHERE rowid = ?",
                [(at, r) for r in rowids],
            )

    def set_state(self, rowid: int, state: State) -> None:
        """Move a memory's lifecycle state in place (no new version)."""
        with self.write():
            self.db.execute("UPDATE memories SET state = ? WHERE rowid = ?", (state.value, rowid))

    def activate(self, rowid: int, at: float) -> int | None:
        """Generated -> activated in place if it still is generated and unexpired at ``at``.

        Returns the memory's (unchanged) version when it moved, else None. The
        condition is in the UPDATE, so a concurrent change is never overwritten.
        """
        with self.write():
            cur = self.db.execute(
                "UPDATE memories SET state = ? WHERE rowid = ? AND state = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (State.ACTIVATED.value, rowid, State.GENERATED.value, at),
            )
            if cur.rowcount != 1:
                return None
            self.bump_generation("activations")
            row = self.db.execute("SELECT version FROM memories WHERE rowid = ?", (rowid,))
            return int(row.fetchone()[0])

    def add_uses(self, memory_id: str, uses: int) -> None:
        """Add ``uses`` to a memory's access count (a merge hands its uses on; no new version)."""
        with self.write():
            self.db.execute(
                "UPDATE memories SET access_count = access_count + ? WHERE id = ?",
                (uses, memory_id),
            )

    # ---- audit

    def audit(
        self,
        *,
        at: float,
        actor: str | None,
        action: str,
        target: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        self.audit_many([(at, actor, action, target, detail)])

    def audit_many(self, rows: Sequence[AuditRow]) -> None:
        """Append ``rows`` in order, chained, in one transaction."""
        if not rows:
            return
        with self.write():
            prev = self.db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev_hash = prev[0] if prev else _ZERO_HASH
            values = []
            for at, actor, action, target, detail in rows:
                plain = dict(detail)
                digest = _chain_hash(prev_hash, _body(at, actor, action, target, plain))
                values.append((at, actor, action, target, dumps(plain), prev_hash, digest))
                prev_hash = digest
            self.db.executemany(
                "INSERT INTO audit(at, actor, action, target, detail, prev_hash, hash) "
                "VALUES (?,?,?,?,?,?,?)",
                values,
            )

    def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        where: list[str] = ["1=1"]
        params: list[Any] = []
        for column, value in (("actor", actor), ("action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if target is not None:
            where.append("(target = ? OR detail LIKE ?)")
            params.extend([target, f"%{json.dumps(target)[1:-1]}%"])
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        rows = self.db.execute(
            f"SELECT * FROM audit WHERE {' AND '.join(where)} "  # noqa: S608 - constant fragments
            "ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        out = []
        for r in reversed(rows):
            at = from_epoch(r["at"])
            assert at is not None
            detail = json.loads(r["detail"])
            out.append(
                AuditEntry(r["seq"], at, r["actor"], r["action"], r["target"], detail, r["hash"])
            )
        return out

    def verify_audit_chain(self) -> int | None:
        """The seq of the first row whose hash does not chain, or None when intact."""
        prev_hash = _ZERO_HASH
        for r in self.db.execute("SELECT * FROM audit ORDER BY seq"):
            body = _body(r["at"], r["actor"], r["action"], r["target"], json.loads(r["detail"]))
            if r["prev_hash"] != prev_hash or _chain_hash(prev_hash, body) != r["hash"]:
                return int(r["seq"])
            prev_hash = r["hash"]
        return None
