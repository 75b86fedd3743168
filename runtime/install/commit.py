"""The installer's commit step: a trusted pack's memories into the engine, atomically.

The pack's blobs are already in the content-addressed cache (fetched and
verified there, shared by versions; :mod:`.fetch`): nothing is copied or
extracted here, and the engine reads KV caches and adapters from the cache
files themselves. :func:`commit_pack` embeds the plaintext memories
(before taking the engine's write lock, so other writers need not wait for
the model), then replaces the pack's memories in one SQLite transaction:
new memories are inserted, changed ones get a new version (keeping their
lifecycle state, creation time and use counters), unchanged ones only move
to the new pack version (a plaintext cube identical to the installed one moves
in one statement, its records not even re-read: :func:`with_carried`),
dropped ones become tombstones (``removed``), and
the ``packs`` row names the new version. Until that transaction commits, the
previous state is intact.

:func:`remove_pack` is the reverse: every memory of the pack becomes a
tombstone (history kept) and the pack's row and KV caches go, in one
transaction; blobs are freed afterwards by the installer's ``gc``.

Not here: trust (:mod:`runtime.install.trust`), reading the pack
(:mod:`runtime.install.items`), downloading, the lockfile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from protocol import Manifest, MemoryType

from ..engine.engine import Engine
from ..engine.lifecycle import State
from ..engine.store import Store
from ..engine.types import Memory, NewMemory, to_epoch
from ..errors import InstallError
from .items import unchanged_cubes
from .results import InstallResult
from .trust import manifest_sha256

__all__ = ["PackState", "commit_pack", "remove_pack", "with_carried"]


@dataclass(frozen=True)
class PackState:
    """The trusted pack being committed: its manifest and the identity it is installed as.

    ``sha256``/``size`` name the version (the ``.memcube`` file's digest when
    there is one, as the registry and ``memos.lock`` know it).
    """

    manifest: Manifest
    manifest_bytes: bytes
    sha256: str
    size: int
    #: plaintext cubes unchanged since the installed version (manifest digest
    #: ``carried_from``): their memories move to the new version as they are
    carried: tuple[str, ...] = ()
    carried_from: str | None = None


def with_carried(store: Store, state: PackState) -> PackState:
    """``state`` with the plaintext cubes an upgrade can carry over unread
    (:func:`runtime.install.items.unchanged_cubes`)."""
    name = state.manifest.name
    text = store.pack_manifest(name)
    installed = Manifest.from_bytes(text.encode("utf-8")) if text else None
    carried = unchanged_cubes(state.manifest, installed, store.cubes_with_tombstones(name))
    return replace(state, carried=tuple(carried), carried_from=store.pack_manifest_sha256(name))


def _same_content(old: Memory, new: Memory) -> bool:
    return (old.text, old.tags, dict(old.metadata), dict(old.payloads)) == (
        new.text,
        new.tags,
        dict(new.metadata),
        dict(new.payloads),
    )


def _reused_vector(
    item: NewMemory, installed: Mapping[str, tuple[Memory, int | None]]
) -> int | None:
    """The vector row of the installed memory with this item's id and text, if any.

    Only for items that carry no embedding of their own (those cost nothing to use).
    """
    if item.embedding is not None or item.id is None:
        return None
    old, vec = installed.get(item.id, (None, None))
    if old is None or vec is None or old.text != item.text:
        return None
    return vec


def _embed(
    engine: Engine, items: Sequence[NewMemory], early: Mapping[str, npt.NDArray[np.float32]] | None
) -> npt.NDArray[np.float32]:
    """``engine.embed_items(items)``, taking the vectors ``early`` already holds."""
    known = [i for i, it in enumerate(items) if it.embedding is None and it.text in (early or {})]
    if not known or early is None:
        return engine.embed_items(items)
    taken = set(known)
    rest = [i for i in range(len(items)) if i not in taken]
    first = early[items[known[0]].text]
    out = np.zeros((len(items), len(first)), dtype=np.float32)
    out[known] = np.stack([early[items[i].text] for i in known])
    if rest:
        out[rest] = engine.embed_items([items[i] for i in rest])
    return out


def commit_pack(
    engine: Engine,
    pack: PackState,
    items: Sequence[NewMemory],
    signed_by: Sequence[str],
    *,
    registry: str | None,
    actor: str | None,
    source: str,
    stage: Callable[[str], None] = lambda _: None,
    early: Mapping[str, npt.NDArray[np.float32]] | None = None,
) -> InstallResult:
    """Install ``items`` (the memories of ``pack``) into ``engine``; see the module docstring.

    ``early``: vectors of texts already embedded while the pack downloaded
    (:mod:`.early_embed`), by the engine's own embedder.
    """
    m = pack.manifest
    store = engine.store
    plain = [i for i, it in enumerate(items) if it.memory_type is MemoryType.PLAINTEXT]
    # Embedding is slow (a real model: ~200 memories/s), so it runs before the write
    # lock and only for memories whose text the installed version does not already
    # have a vector for: an upgrade that changed one memory file embeds that file.
    carried = pack.carried
    installed = {mem.id: (mem, vec) for _, mem, vec in store.pack_rows(m.name, skip_cubes=carried)}
    fresh = [i for i in plain if _reused_vector(items[i], installed) is None]
    if fresh:
        stage(f"indexing {len(fresh)} memories for semantic search")
    vectors = _embed(engine, [items[i] for i in fresh], early) if fresh else None
    with engine.write_lock:
        if carried and store.pack_manifest_sha256(m.name) != pack.carried_from:
            raise InstallError(
                f"another process changed {m.name} while this install ran; nothing was "
                "changed: run the command again",
                code="install.concurrent_change",
            )
        rows = store.pack_rows(m.name, skip_cubes=carried)
        existing = {mem.id: (rowid, mem, vec) for rowid, mem, vec in rows}
        prev = next((p for p in store.installed_packs() if p.name == m.name), None)
        if prev is not None and prev.sha256 == pack.sha256:
            return InstallResult(
                m.name,
                m.version,
                pack.sha256,
                pack.size,
                prev.memories,
                prev.signed_by,
                source,
                changed=False,
                previous_version=prev.version,
            )
        now_installed = {mid: (mem, vec) for mid, (_, mem, vec) in existing.items()}
        chosen = set(fresh)
        late = [  # changed by another process since the read above: embed them now
            i for i in plain if i not in chosen and _reused_vector(items[i], now_installed) is None
        ]
        if late:
            late_vectors = engine.embed_items([items[i] for i in late])
            vectors = late_vectors if vectors is None else np.vstack([vectors, late_vectors])
        vec_rows: dict[int, int] = {}
        if vectors is not None and len(vectors):
            first = engine.vectors.append(np.asarray(vectors, dtype=np.float32))
            vec_rows = {i: first + n for n, i in enumerate([*fresh, *late])}
        for i in plain:
            if i not in vec_rows:
                reused = _reused_vector(items[i], now_installed)
                assert reused is not None
                vec_rows[i] = reused
        stage(f"committing {m.ref}")
        now = engine.clock()
        at = to_epoch(now)
        event = f"install:{m.version}"
        seen: set[str] = set()
        with store.write():
            kept = store.carry_cubes(m.name, carried, m.version)
            for i, item in enumerate(items):
                assert item.id is not None
                seen.add(item.id)
                new = item.build(item.id, now)
                if item.id not in existing:
                    store.insert(new, vec_rows.get(i), event="install", actor=actor, at=at)
                    continue
                rowid, old, old_vec = existing[item.id]
                if _same_content(old, new) and old.state is not State.REMOVED:
                    store.set_pack_version(rowid, m.version)
                    continue
                state = new.state if old.state is State.REMOVED else old.state
                updated = replace(
                    new,
                    state=state,
                    version=old.version + 1,
                    created_at=old.created_at,
                    access_count=old.access_count,
                    last_accessed_at=old.last_accessed_at,
                )
                vec = vec_rows.get(i, old_vec)
                store.update(rowid, updated, vec, event=event, actor=actor, at=at)
            for memory_id, (rowid, old, vec) in existing.items():
                if memory_id not in seen and old.state is not State.REMOVED:
                    gone = replace(
                        old, state=State.REMOVED, version=old.version + 1, updated_at=now
                    )
                    store.update(rowid, gone, vec, event=event, actor=actor, at=at)
            store.upsert_pack(
                name=m.name,
                version=m.version,
                sha256=pack.sha256,
                size=pack.size,
                manifest_sha256=manifest_sha256(pack.manifest_bytes),
                manifest=pack.manifest_bytes.decode("utf-8"),
                signed_by=signed_by,
                registry=registry,
                at=at,
            )
            engine.bump_generation()
    previous = prev.version if prev else None
    engine.audit(
        "install",
        actor=actor,
        target=m.name,
        version=m.version,
        sha256=pack.sha256,
        previous_version=previous,
        memories=len(items) + kept,
        signed_by=sorted(signed_by),
        source=source,
        registry=registry,
    )
    return InstallResult(
        m.name,
        m.version,
        pack.sha256,
        pack.size,
        len(items) + kept,
        tuple(sorted(signed_by)),
        source,
        previous_version=previous,
    )


def remove_pack(engine: Engine, name: str, *, actor: str | None) -> int:
    """Tombstone every memory of pack ``name`` and forget the pack; how many were live."""
    store = engine.store
    with engine.write_lock:
        if store.pack_manifest_sha256(name) is None:
            raise InstallError(f"{name} is not installed", code="install.not_installed")
        now = engine.clock()
        count = 0
        with store.write():
            for rowid, old, vec in store.pack_rows(name):
                if old.state is State.REMOVED:
                    continue
                gone = replace(old, state=State.REMOVED, version=old.version + 1, updated_at=now)
                store.update(rowid, gone, vec, event="uninstall", actor=actor, at=to_epoch(now))
                count += 1
            store.delete_pack(name)  # their activation forms go too (files freed by gc)
            engine.bump_generation()
    engine.audit("remove", actor=actor, target=name, memories=count)
    return count
