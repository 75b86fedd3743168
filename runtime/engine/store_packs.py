"""The store's queries over installed packs and the KV caches built from memories.

``packs`` holds one row per installed pack (its version, file digest, signed
manifest and signers); ``kv_caches`` one row per (plaintext memory, model
fingerprint digest) activation form built by dynamic transformation. The
installer (:mod:`runtime.install`), the transformation policies
(:mod:`runtime.engine.transform`) and the blob garbage collector read and
write them only through these methods.

Not here: the memories themselves (:mod:`runtime.engine.store`), the schema
(:mod:`runtime.engine.schema`), or deciding what to install or demote.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from protocol import MemoryType

from .lifecycle import State
from .rows import COLUMNS, row_to_memory
from .schema import Database
from .types import KVCacheRecord, Memory, PackRecord

__all__ = ["PackQueries"]


class PackQueries(Database):
    """Installed packs, their memories' rows, and the KV caches (see the module docstring)."""

    # ---- packs

    def installed_packs(self) -> list[PackRecord]:
        """Every installed pack by name, with the number of its memories not removed."""
        rows = self.db.execute(
            "SELECT p.*, (SELECT COUNT(*) FROM memories m WHERE m.pack = p.name "
            "AND m.state != ?) AS n FROM packs p ORDER BY p.name",
            (State.REMOVED.value,),
        ).fetchall()
        return [
            PackRecord(
                r["name"], r["version"], r["sha256"], r["size"], r["registry"],
                float(r["installed_at"]), tuple(json.loads(r["signed_by"])), int(r["n"]),
            )
            for r in rows
        ]

    def pack_manifest(self, name: str) -> str | None:
        """The signed manifest (canonical JSON text) of an installed pack."""
        row = self.db.execute("SELECT manifest FROM packs WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def pack_manifest_sha256(self, name: str) -> str | None:
        sql = "SELECT manifest_sha256 FROM packs WHERE name = ?"
        row = self.db.execute(sql, (name,)).fetchone()
        return None if row is None else str(row[0])

    def pack_rows(
        self, name: str, *, skip_cubes: Sequence[str] = ()
    ) -> list[tuple[int, Memory, int | None]]:
        """(rowid, memory, vec_row) of every memory of pack ``name``, tombstones included,
        but none of the cubes ``skip_cubes``."""
        skip = ",".join("?" * len(skip_cubes))
        where = f" AND (cube_id IS NULL OR cube_id NOT IN ({skip}))" if skip_cubes else ""
        rows = self.db.execute(
            f"SELECT {COLUMNS} FROM memories WHERE pack = ?{where} ORDER BY rowid",  # noqa: S608
            (name, *skip_cubes),
        ).fetchall()
        return [(int(r["rowid"]), row_to_memory(r), r["vec_row"]) for r in rows]

    def set_pack_version(self, rowid: int, version: str) -> None:
        """Say an unchanged memory now belongs to ``version`` of its pack (no new version)."""
        self.db.execute("UPDATE memories SET pack_version = ? WHERE rowid = ?", (version, rowid))

    def cubes_with_tombstones(self, name: str) -> set[str]:
        """The cubes of pack ``name`` that have at least one removed memory."""
        rows = self.db.execute(
            "SELECT DISTINCT cube_id FROM memories WHERE pack = ? AND state = ? "
            "AND cube_id IS NOT NULL",
            (name, State.REMOVED.value),
        )
        return {str(r[0]) for r in rows}

    def carry_cubes(self, name: str, cube_ids: Sequence[str], version: str) -> int:
        """Move every memory of ``cube_ids`` (unchanged cubes) to ``version``; how many."""
        if not cube_ids:
            return 0
        marks = ",".join("?" * len(cube_ids))
        cursor = self.db.execute(
            f"UPDATE memories SET pack_version = ? WHERE pack = ? "  # noqa: S608
            f"AND cube_id IN ({marks}) AND state != ?",
            (version, name, *cube_ids, State.REMOVED.value),
        )
        return int(cursor.rowcount)

    def upsert_pack(
        self,
        *,
        name: str,
        version: str,
        sha256: str,
        size: int,
        manifest_sha256: str,
        manifest: str,
        signed_by: Sequence[str],
        registry: str | None,
        at: float,
    ) -> None:
        """Record ``name`` as installed at ``version`` (replacing the previous row)."""
        self.db.execute(
            "INSERT OR REPLACE INTO packs(name, version, sha256, size, manifest_sha256, "
            "manifest, signed_by, registry, installed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (name, version, sha256, size, manifest_sha256, manifest,
             json.dumps(sorted(signed_by)), registry, at),
        )

    def delete_pack(self, name: str) -> None:
        """Forget an installed pack and the KV caches of its memories (not the memories)."""
        self.db.execute("DELETE FROM packs WHERE name = ?", (name,))
        self.db.execute(
            "DELETE FROM kv_caches WHERE memory_id IN (SELECT id FROM memories WHERE pack = ?)",
            (name,),
        )

    def referenced_digests(self) -> set[str]:
        """Every blob digest an installed pack (its file, manifest, payloads), a live memory
        or a KV cache refers to."""
        db = self.db
        keep = {str(r[0]) for r in db.execute("SELECT sha256 FROM packs")}
        keep |= {str(r[0]) for r in db.execute("SELECT manifest_sha256 FROM packs")}
        keep |= {str(r[0]) for r in db.execute("SELECT sha256 FROM kv_caches")}
        for (payloads,) in db.execute(
            "SELECT payloads FROM memories WHERE state != ? AND payloads != '{}'",
            (State.REMOVED.value,),
        ):
            keep |= set(json.loads(payloads).values())
        for (manifest,) in db.execute("SELECT manifest FROM packs"):
            for cube in json.loads(manifest).get("cubes", []):
                keep |= {p["sha256"] for p in cube.get("payloads", [])}
        return keep

    # ---- KV caches

    def kv_cache(self, memory_id: str, fingerprint_digest: str) -> KVCacheRecord | None:
        row = self.db.execute(
            "SELECT * FROM kv_caches WHERE memory_id = ? AND fingerprint_digest = ?",
            (memory_id, fingerprint_digest),
        ).fetchone()
        return None if row is None else _kv_record(row)

    def kv_caches_unused_since(self, cutoff: float) -> list[KVCacheRecord]:
        sql = "SELECT * FROM kv_caches WHERE last_used_at < ?"
        return [_kv_record(r) for r in self.db.execute(sql, (cutoff,)).fetchall()]

    def mark_kv_used(self, memory_ids: Sequence[str], fingerprint_digest: str, at: float) -> None:
        with self.write():
            self.db.executemany(
                "UPDATE kv_caches SET use_count = use_count + 1, last_used_at = ? "
                "WHERE memory_id = ? AND fingerprint_digest = ?",
                [(at, memory_id, fingerprint_digest) for memory_id in memory_ids],
            )

    def hot_plaintext(
        self, states: Sequence[State], *, min_uses: int, fingerprint_digest: str, limit: int
    ) -> list[tuple[str, str, int]]:
        """(id, text, access count) of plaintext memories used at least ``min_uses`` times
        with no KV cache for the model ``fingerprint_digest``, most used first."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            "SELECT id, text, access_count FROM memories m WHERE memory_type = ? "  # noqa: S608
            f"AND state IN ({marks}) AND access_count >= ? "
            "AND NOT EXISTS (SELECT 1 FROM kv_caches k "
            "WHERE k.memory_id = m.id AND k.fingerprint_digest = ?) "
            "ORDER BY access_count DESC LIMIT ?",
            [MemoryType.PLAINTEXT.value, *(s.value for s in states), min_uses,
             fingerprint_digest, limit],
        ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def upsert_kv_cache(
        self,
        *,
        memory_id: str,
        fingerprint_digest: str,
        sha256: str,
        size: int,
        token_count: int,
        at: float,
    ) -> None:
        with self.write():
            self.db.execute(
                "INSERT OR REPLACE INTO kv_caches(memory_id, fingerprint_digest, sha256, size, "
                "token_count, created_at, last_used_at, use_count) VALUES (?,?,?,?,?,?,?,0)",
                (memory_id, fingerprint_digest, sha256, size, token_count, at, at),
            )

    def drop_kv_cache(self, record: KVCacheRecord) -> bool:
        """Delete one KV cache row; whether another row still refers to its blob."""
        with self.write():
            self.db.execute(
                "DELETE FROM kv_caches WHERE memory_id = ? AND fingerprint_digest = ?",
                (record.memory_id, record.fingerprint_digest),
            )
            sql = "SELECT 1 FROM kv_caches WHERE sha256 = ?"
            return self.db.execute(sql, (record.sha256,)).fetchone() is not None


def _kv_record(row: sqlite3.Row) -> KVCacheRecord:
    return KVCacheRecord(
        row["memory_id"], row["fingerprint_digest"], row["sha256"], int(row["size"]),
        int(row["token_count"]), float(row["last_used_at"]),
    )
