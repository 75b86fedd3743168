"""The engine database: its schema, its connection, one write transaction, and ``meta``.

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
* ``meta``            key/value: schema version, embedding model, vector file,
                      generation (bumped by every change that search must see),
                      activations (uses that activated a generated memory),
                      last maintenance

:class:`Database` opens the file, creates what is missing and owns the
``meta`` table; :class:`runtime.engine.store.Store` builds every query on it.

Not here: queries over memories, packs, caches or the audit log
(:mod:`runtime.engine.store`, :mod:`runtime.engine.store_packs`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "Database"]

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


def _enter_wal(db: sqlite3.Connection, *, deadline: float) -> None:
    """Switch to WAL, waiting for other processes that open the same file right now.

    SQLite answers "database is locked" to a journal-mode change at once, without
    calling the busy handler, while another connection is creating or switching
    the same database; so two ``memos`` processes starting together would fail.
    """
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Database:
    """One connection to ``engine.db`` (schema created on open), its transactions and ``meta``."""

    def __init__(
        self, path: Path, *, busy_timeout_s: float = 60.0, shared_by_threads: bool = False
    ) -> None:
        """``shared_by_threads``: the caller serializes use of the connection across threads
        (the deferred usage log's writer, :mod:`runtime.engine.usage`)."""
        self.path = Path(path)
        self.db = sqlite3.connect(
            str(self.path),
            timeout=busy_timeout_s,
            isolation_level=None,
            check_same_thread=not shared_by_threads,
        )
        self.db.row_factory = sqlite3.Row
        _enter_wal(self.db, deadline=time.monotonic() + busy_timeout_s)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        with self.write():
            for statement in _split(_SCHEMA):
                self.db.execute(statement)
            self.db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
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

    def data_version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # ---- meta

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.write():
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def bump_generation(self, key: str = "generation") -> None:
        """Count one more change that cached search state (live vector rows) must see.

        ``key="activations"`` counts uses that moved memories from generated to
        activated: the live rows change only for a search that wants one of the
        two states without the other (see :class:`runtime.engine.retrieval.LiveVectors`).
        """
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (key,),
        )
