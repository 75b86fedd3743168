"""SQLite storage of the engine: memories, versions, audit log, FTS5 index, meta.

One database file (``engine.db``) in WAL mode, so readers never block the
writer and several processes can share it (writes take ``BEGIN IMMEDIATE``
and wait up to ``busy_timeout``). Times are stored as float epoch seconds so
that SQL compares them correctly.

Tables:

* ``memories``        the current state of each memory (one row per id)
* ``memory_versions`` one row per change (full snapshot): history, rollback,
                      point-in-time reads. Access counters are behaviour, not
                      content: reads update them without creating a version.
* ``memories_fts``    FTS5 (BM25) over text and tags, keyed by memories.rowid
* ``audit``           append-only (UPDATE/DELETE raise in triggers), each row
                      hash-chained to the previous one (tamper evidence)
* ``packs``           installed packs (name, version, digests, manifest)
* ``kv_caches``       activation forms of plaintext memories (dynamic transformation)
* ``meta``            key/value: schema version, embedding model, last maintenance

Not here: business rules (see :mod:`runtime.engine.engine`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from protocol import AccessPolicy, ModelFingerprint

from .lifecycle import State
from .types import AuditEntry, Memory, VersionEntry, from_epoch, to_epoch

__all__ = ["SNAPSHOT_FIELDS", "Store", "memory_from_snapshot", "snapshot_of"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    memory_type TEXT NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    pack TEXT,
    pack_version TEXT,
    cube_id TEXT,
    priority REAL NOT NULL DEFAULT 0.5,
    access_count INTEGER NOT NULL DEFAULT 0,
    last_accessed_at REAL,
    expires_at REAL,
    access TEXT NOT NULL DEFAULT '{"visibility":"public"}',
    usage_terms TEXT,
    source TEXT,
    merged_into TEXT,
    fingerprint TEXT,
    payloads TEXT NOT NULL DEFAULT '{}',
    token_count INTEGER,
    vec_row INTEGER
);
CREATE INDEX IF NOT EXISTS memories_pack ON memories(pack);
CREATE INDEX IF NOT EXISTS memories_state ON memories(state);
CREATE INDEX IF NOT EXISTS memories_created ON memories(created_at);
CREATE TABLE IF NOT EXISTS memory_versions (
    memory_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    actor TEXT,
    snapshot TEXT NOT NULL,
    PRIMARY KEY (memory_id, version)
);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(text, tags, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_target ON audit(target);
CREATE INDEX IF NOT EXISTS audit_actor ON audit(actor);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS packs (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    manifest TEXT NOT NULL,
    signed_by TEXT NOT NULL,
    registry TEXT,
    installed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv_caches (
    memory_id TEXT NOT NULL,
    fingerprint_digest TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL,
    use_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (memory_id, fingerprint_digest)
);
"""

#: The content fields a version snapshot holds (behaviour counters excluded).
SNAPSHOT_FIELDS = (
    "text",
    "state",
    "tags",
    "metadata",
    "priority",
    "expires_at",
    "access",
    "usage_terms",
    "merged_into",
    "memory_type",
    "pack",
    "pack_version",
    "cube_id",
    "source",
    "fingerprint",
    "payloads",
    "token_count",
    "created_at",
    "updated_at",
)

_COLUMNS = (
    "rowid, id, memory_type, text, state, version, created_at, updated_at, tags, metadata, pack, "
    "pack_version, cube_id, priority, access_count, last_accessed_at, expires_at, access, "
    "usage_terms, source, merged_into, fingerprint, payloads, token_count, vec_row"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def row_to_memory(row: sqlite3.Row) -> Memory:
    fingerprint = row["fingerprint"]
    created = from_epoch(row["created_at"])
    updated = from_epoch(row["updated_at"])
    assert created is not None
    assert updated is not None
    return Memory(
        id=row["id"],
        memory_type=row["memory_type"],
        text=row["text"],
        state=State(row["state"]),
        version=row["version"],
        created_at=created,
        updated_at=updated,
        tags=tuple(json.loads(row["tags"])),
        metadata=json.loads(row["metadata"]),
        pack=row["pack"],
        pack_version=row["pack_version"],
        cube_id=row["cube_id"],
        priority=row["priority"],
        access_count=row["access_count"],
        last_accessed_at=from_epoch(row["last_accessed_at"]),
        expires_at=from_epoch(row["expires_at"]),
        access=AccessPolicy.from_dict(json.loads(row["access"])),
        usage_terms=row["usage_terms"],
        source=row["source"],
        merged_into=row["merged_into"],
        fingerprint=ModelFingerprint.from_dict(json.loads(fingerprint)) if fingerprint else None,
        payloads=json.loads(row["payloads"]),
        token_count=row["token_count"],
    )


def snapshot_of(memory: Memory) -> dict[str, Any]:
    """The versioned content of a memory as JSON-able values (times as epoch floats)."""
    return {
        "text": memory.text,
        "state": memory.state.value,
        "tags": list(memory.tags),
        "metadata": dict(memory.metadata),
        "priority": memory.priority,
        "expires_at": to_epoch(memory.expires_at) if memory.expires_at else None,
        "access": memory.access.to_dict(),
        "usage_terms": memory.usage_terms,
        "merged_into": memory.merged_into,
        "memory_type": memory.memory_type,
        "pack": memory.pack,
        "pack_version": memory.pack_version,
        "cube_id": memory.cube_id,
        "source": memory.source,
        "fingerprint": memory.fingerprint.to_dict() if memory.fingerprint else None,
        "payloads": dict(memory.payloads),
        "token_count": memory.token_count,
        "created_at": to_epoch(memory.created_at),
        "updated_at": to_epoch(memory.updated_at),
    }


def memory_from_snapshot(memory_id: str, version: int, snap: Mapping[str, Any]) -> Memory:
    created = from_epoch(snap["created_at"])
    updated = from_epoch(snap["updated_at"])
    assert created is not None
    assert updated is not None
    fp = snap.get("fingerprint")
    return Memory(
        id=memory_id,
        memory_type=snap["memory_type"],
        text=snap["text"],
        state=State(snap["state"]),
        version=version,
        created_at=created,
        updated_at=updated,
        tags=tuple(snap["tags"]),
        metadata=dict(snap["metadata"]),
        pack=snap.get("pack"),
        pack_version=snap.get("pack_version"),
        cube_id=snap.get("cube_id"),
        priority=snap["priority"],
        expires_at=from_epoch(snap.get("expires_at")),
        access=AccessPolicy.from_dict(snap["access"]),
        usage_terms=snap.get("usage_terms"),
        source=snap.get("source"),
        merged_into=snap.get("merged_into"),
        fingerprint=ModelFingerprint.from_dict(fp) if fp else None,
        payloads=dict(snap.get("payloads") or {}),
        token_count=snap.get("token_count"),
    )


class Store:
    """Thin typed access to the SQLite database. One connection per Store."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        with self.write():
            for statement in _split(_SCHEMA):
                self.db.execute(statement)
            self.db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error)."""
        if self.db.in_transaction:  # nested: join the outer transaction
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- meta

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.write():
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # ---- memories

    def get(self, memory_id: str) -> tuple[Memory, int, int | None] | None:
        """(memory, rowid, vec_row) or None."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,)).fetchone()  # noqa: S608 - only constant SQL fragments are interpolated
        return None if row is None else (row_to_memory(row), row["rowid"], row["vec_row"])

    def by_rowids(self, rowids: Sequence[int]) -> dict[int, Memory]:
        out: dict[int, Memory] = {}
        for start in range(0, len(rowids), 500):
            chunk = list(rowids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT {_COLUMNS} FROM memories WHERE rowid IN ({marks})", chunk):  # noqa: S608 - only constant SQL fragments are interpolated
                out[row["rowid"]] = row_to_memory(row)
        return out

    def query(self, where: str, params: Sequence[Any], *, order: str = "rowid", limit: int | None = None) -> list[tuple[int, Memory]]:
        sql = f"SELECT {_COLUMNS} FROM memories m WHERE {where} ORDER BY {order}"  # noqa: S608 - only constant SQL fragments are interpolated
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [(r["rowid"], row_to_memory(r)) for r in self.db.execute(sql, list(params))]

    def insert(self, memory: Memory, vec_row: int | None, *, event: str, actor: str | None, at: float) -> int:
        cur = self.db.execute(
            "INSERT INTO memories (id, memory_type, text, state, version, created_at, updated_at, tags, "
            "metadata, pack, pack_version, cube_id, priority, access_count, last_accessed_at, expires_at, "
            "access, usage_terms, source, merged_into, fingerprint, payloads, token_count, vec_row) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*self._values(memory), vec_row),
        )
        rowid = int(cur.lastrowid or 0)
        self.db.execute(
            "INSERT INTO memories_fts(rowid, text, tags) VALUES (?, ?, ?)",
            (rowid, memory.text, " ".join(memory.tags)),
        )
        self._version(memory, event=event, actor=actor, at=at)
        return rowid

    def update(self, rowid: int, memory: Memory, vec_row: int | None, *, event: str, actor: str | None, at: float) -> None:
        values = self._values(memory)
        self.db.execute(
            "UPDATE memories SET id=?, memory_type=?, text=?, state=?, version=?, created_at=?, updated_at=?, "
            "tags=?, metadata=?, pack=?, pack_version=?, cube_id=?, priority=?, access_count=?, "
            "last_accessed_at=?, expires_at=?, access=?, usage_terms=?, source=?, merged_into=?, "
            "fingerprint=?, payloads=?, token_count=?, vec_row=? WHERE rowid=?",
            (*values, vec_row, rowid),
        )
        self.db.execute("DELETE FROM memories_fts WHERE rowid = ?", (rowid,))
        self.db.execute(
            "INSERT INTO memories_fts(rowid, text, tags) VALUES (?, ?, ?)",
            (rowid, memory.text, " ".join(memory.tags)),
        )
        self._version(memory, event=event, actor=actor, at=at)

    def delete_rows(self, rowids: Sequence[int]) -> None:
        for rowid in rowids:
            self.db.execute("DELETE FROM memories WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM memories_fts WHERE rowid = ?", (rowid,))

    @staticmethod
    def _values(m: Memory) -> tuple[Any, ...]:
        return (
            m.id,
            m.memory_type,
            m.text,
            m.state.value,
            m.version,
            to_epoch(m.created_at),
            to_epoch(m.updated_at),
            _dumps(list(m.tags)),
            _dumps(dict(m.metadata)),
            m.pack,
            m.pack_version,
            m.cube_id,
            m.priority,
            m.access_count,
            to_epoch(m.last_accessed_at) if m.last_accessed_at else None,
            to_epoch(m.expires_at) if m.expires_at else None,
            _dumps(m.access.to_dict()),
            m.usage_terms,
            m.source,
            m.merged_into,
            _dumps(m.fingerprint.to_dict()) if m.fingerprint else None,
            _dumps(dict(m.payloads)),
            m.token_count,
        )

    def _version(self, memory: Memory, *, event: str, actor: str | None, at: float) -> None:
        self.db.execute(
            "INSERT INTO memory_versions(memory_id, version, at, event, actor, snapshot) VALUES (?,?,?,?,?,?)",
            (memory.id, memory.version, at, event, actor, _dumps(snapshot_of(memory))),
        )

    def touch(self, rowids: Sequence[int], at: float) -> None:
        """Record one use of each memory (behaviour counters; no new version)."""
        with self.write():
            self.db.executemany(
                "UPDATE memories SET access_count = access_count + 1, last_accessed_at = ? WHERE rowid = ?",
                [(at, r) for r in rowids],
            )

    def versions(self, memory_id: str) -> list[VersionEntry]:
        rows = self.db.execute(
            "SELECT * FROM memory_versions WHERE memory_id = ? ORDER BY version", (memory_id,)
        ).fetchall()
        return [_version_entry(r) for r in rows]

    def version(self, memory_id: str, version: int) -> VersionEntry | None:
        row = self.db.execute(
            "SELECT * FROM memory_versions WHERE memory_id = ? AND version = ?", (memory_id, version)
        ).fetchone()
        return None if row is None else _version_entry(row)

    def version_as_of(self, memory_id: str, at: float) -> VersionEntry | None:
        row = self.db.execute(
            "SELECT * FROM memory_versions WHERE memory_id = ? AND at <= ? ORDER BY version DESC LIMIT 1",
            (memory_id, at),
        ).fetchone()
        return None if row is None else _version_entry(row)

    # ---- full-text

    def keyword(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(rowid, bm25) best first (bm25 is lower-is-better in SQLite)."""
        rows = self.db.execute(
            "SELECT rowid, bm25(memories_fts) AS score FROM memories_fts WHERE memories_fts MATCH ? "
            "ORDER BY score LIMIT ?",
            (match, limit),
        ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def live_vectors(self, states: Sequence[str]) -> list[tuple[int, int]]:
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT vec_row, rowid FROM memories WHERE vec_row IS NOT NULL AND state IN ({marks}) ORDER BY vec_row",  # noqa: S608 - only constant SQL fragments are interpolated
            list(states),
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    def data_version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # ---- audit

    def audit(self, *, at: float, actor: str | None, action: str, target: str | None, detail: Mapping[str, Any]) -> None:
        with self.write():
            prev = self.db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev_hash = prev[0] if prev else "0" * 64
            body = _dumps({"at": at, "actor": actor, "action": action, "target": target, "detail": dict(detail)})
            digest = hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
            self.db.execute(
                "INSERT INTO audit(at, actor, action, target, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
                (at, actor, action, target, _dumps(dict(detail)), prev_hash, digest),
            )

    def audit_entries(
        self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
        since: float | None = None, limit: int = 100,
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
            f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?", [*params, limit]  # noqa: S608 - only constant SQL fragments are interpolated
        ).fetchall()
        out = []
        for r in reversed(rows):
            at = from_epoch(r["at"])
            assert at is not None
            out.append(AuditEntry(r["seq"], at, r["actor"], r["action"], r["target"], json.loads(r["detail"]), r["hash"]))
        return out

    def verify_audit_chain(self) -> int | None:
        """The seq of the first row whose hash does not chain, or None when intact."""
        prev_hash = "0" * 64
        for r in self.db.execute("SELECT * FROM audit ORDER BY seq"):
            body = _dumps({"at": r["at"], "actor": r["actor"], "action": r["action"], "target": r["target"], "detail": json.loads(r["detail"])})
            if r["prev_hash"] != prev_hash or hashlib.sha256((prev_hash + body).encode()).hexdigest() != r["hash"]:
                return int(r["seq"])
            prev_hash = r["hash"]
        return None


def _version_entry(row: sqlite3.Row) -> VersionEntry:
    at = from_epoch(row["at"])
    assert at is not None
    return VersionEntry(row["memory_id"], row["version"], at, row["event"], row["actor"], json.loads(row["snapshot"]))


def _split(script: str) -> list[str]:
    """Split the schema into statements (triggers contain ';' inside BEGIN ... END)."""
    out: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    return out
