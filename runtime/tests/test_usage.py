"""Usage recording off the search path: queued, batched, never lost on a clean close.

A search answers first and its use (counters, generated -> activated, the
audit row) is written after it, in batches (runtime.engine.usage). These
tests hold the background writer back (a long linger) so that what is queued
and what is written are both observable, then check every recorded effect is
still there: audit rows, transitions, no new content version, and the live
row cache kept across an activation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runtime.engine.embedding import HashEmbedder, QueryCache
from runtime.engine.engine import Engine
from runtime.engine.lifecycle import State
from runtime.engine.types import Filters

from .helpers import FixedClock

HELD = 3600.0  # the background writer waits this long: only flushes write


@pytest.fixture
def held(home: Path, clock: FixedClock) -> Iterator[Engine]:
    eng = Engine(
        home, embedder=HashEmbedder(), clock=clock, maintain_every=None, usage_linger_s=HELD
    )
    yield eng
    eng.close()


def _audit_rows(eng: Engine, action: str) -> int:
    row = eng.store.db.execute("SELECT COUNT(*) FROM audit WHERE action = ?", (action,))
    return int(row.fetchone()[0])


def test_search_is_queued_then_audited_on_flush(held: Engine) -> None:
    m = held.add("the backup job runs nightly at two")
    hits = held.search("backup job", principal="agent-1")
    assert [h.memory.id for h in hits] == [m.id]
    assert held.usage.pending == 1
    assert _audit_rows(held, "search") == 0  # not written on the search path
    held.flush_usage()
    assert held.usage.pending == 0
    (entry,) = held.store.audit_entries(action="search")
    assert entry.actor == "agent-1"
    assert entry.detail["memories"] == [m.id]
    assert entry.detail["query"] == "backup job"
    assert held.store.verify_audit_chain() is None


def test_every_search_of_a_batch_keeps_its_own_audit_row(held: Engine) -> None:
    held.add("the backup job runs nightly at two")
    for i in range(5):
        held.search(f"backup job {i}", principal="agent-1")
    assert held.usage.pending == 5
    entries = held.audit_log(action="search")  # a read of the audit log flushes first
    assert [e.detail["query"] for e in entries] == [f"backup job {i}" for i in range(5)]
    assert held.store.verify_audit_chain() is None


def test_use_activates_a_generated_memory_after_the_answer(held: Engine) -> None:
    m = held.add("the backup job runs nightly at two")
    assert m.state is State.GENERATED
    held.search("backup job")
    held.search("backup job")
    assert held.store.get(m.id)[0].state is State.GENERATED  # type: ignore[index]
    held.flush_usage()
    memory = held.store.get(m.id)[0]  # type: ignore[index]
    assert memory.state is State.ACTIVATED
    assert memory.access_count == 2
    transitions = held.store.audit_entries(action="transition", target=m.id)
    assert [t.detail["event"] for t in transitions] == ["activate"]  # once, not twice
    assert transitions[0].detail["reason"] == "first use (search)"


def test_a_read_is_never_a_new_content_version(held: Engine) -> None:
    m = held.add("the backup job runs nightly at two")
    held.search("backup job")
    held.get(m.id)
    held.flush_usage()
    versions = held.history(m.id)
    assert [v.version for v in versions] == [1]
    assert [v.event for v in versions] == ["create"]
    memory = held.store.get(m.id)[0]  # type: ignore[index]
    assert memory.version == 1
    assert memory.state is State.ACTIVATED
    assert memory.access_count == 2


def test_an_activation_keeps_the_live_row_cache(
    held: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    held.add("the backup job runs nightly at two")
    held.add("the office plants need water on fridays")
    loads: list[tuple[str, ...]] = []
    real = held.store.live_vectors

    def counted(states: list[str]) -> list[tuple[int, int]]:
        loads.append(tuple(states))
        return real(states)

    monkeypatch.setattr(held.store, "live_vectors", counted)
    held.search("backup job")
    held.flush_usage()  # activates the backup memory
    held.search("office plants")
    held.flush_usage()
    held.search("backup job")
    assert len(loads) == 1  # one load for three searches around two activations


def test_a_search_of_one_state_sees_activations(held: Engine) -> None:
    m = held.add("the backup job runs nightly at two")
    assert held.search("backup job", filters=Filters(states=(State.ACTIVATED,))) == []
    held.search("backup job")
    held.flush_usage()
    hits = held.search("backup job", filters=Filters(states=(State.ACTIVATED,)))
    assert [h.memory.id for h in hits] == [m.id]


def test_a_clean_close_writes_what_is_queued(home: Path, clock: FixedClock) -> None:
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None,
                 usage_linger_s=HELD)  # fmt: skip
    m = eng.add("the backup job runs nightly at two")
    eng.search("backup job", principal="agent-1")
    eng.close()
    with Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None) as again:
        assert [e.actor for e in again.audit_log(action="search")] == ["agent-1"]
        assert again.store.get(m.id)[0].state is State.ACTIVATED  # type: ignore[index]


def test_a_full_queue_is_written_by_the_reader(home: Path, clock: FixedClock) -> None:
    with Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None,
                usage_linger_s=HELD, usage_max_pending=3) as eng:  # fmt: skip
        eng.add("the backup job runs nightly at two")
        eng.search("backup")
        eng.search("backup")
        assert eng.usage.pending == 2
        eng.search("backup")
        assert eng.usage.pending == 0
        assert _audit_rows(eng, "search") == 3


def test_synchronous_recording_when_asked(home: Path, clock: FixedClock) -> None:
    with Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None,
                usage_linger_s=None) as eng:  # fmt: skip
        eng.add("the backup job runs nightly at two")
        eng.search("backup")
        assert eng.usage.pending == 0
        assert _audit_rows(eng, "search") == 1


def test_the_background_writer_writes_without_a_flush(home: Path, clock: FixedClock) -> None:
    with Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None,
                usage_linger_s=0.01) as eng:  # fmt: skip
        eng.add("the backup job runs nightly at two")
        eng.search("backup", principal="agent-1")
        written = threading.Event()
        for _ in range(500):  # no timing claim: wait (up to 10 s) until it is written
            if _audit_rows(eng, "search") == 1:
                written.set()
                break
            written.wait(0.02)
        assert written.is_set()
        assert eng.usage.pending == 0


def test_a_write_flushes_first_so_order_is_kept(held: Engine) -> None:
    m = held.add("the backup job runs nightly at two")
    held.search("backup job")
    held.update(m.id, text="the backup job runs nightly at three")
    actions = [e.action for e in held.store.audit_entries(target=m.id)]
    assert actions == ["create", "transition", "search", "update"]
    memory = held.store.get(m.id)[0]  # type: ignore[index]
    assert memory.state is State.ACTIVATED  # the update did not undo the activation
    assert memory.version == 2


# ---- the query vector cache


def test_query_cache_returns_the_embedders_vector_once_per_text() -> None:
    calls: list[str] = []
    emb = HashEmbedder()

    class Counting(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            calls.extend(texts)
            return emb.embed(texts)

    counting = Counting()
    cache = QueryCache(size=2)
    first = cache.vector(counting, "backup job")
    assert np.array_equal(first, emb.embed(["backup job"])[0])
    assert not first.flags.writeable
    assert np.array_equal(cache.vector(counting, "  backup   job "), first)  # whitespace only
    assert calls == ["backup job"]
    cache.vector(counting, "Backup job")  # case is the model's business: another entry
    cache.vector(counting, "office plants")  # evicts the least recently used
    assert len(cache) == 2
    cache.vector(counting, "backup job")
    assert calls == ["backup job", "Backup job", "office plants", "backup job"]
    assert (cache.hits, cache.misses) == (1, 4)


def test_query_cache_keys_by_embedder_fingerprint() -> None:
    cache = QueryCache()
    small, large = HashEmbedder(dimension=64), HashEmbedder(dimension=384)
    assert cache.vector(small, "backup").shape == (64,)
    assert cache.vector(large, "backup").shape == (384,)
    assert cache.misses == 2


def test_engine_search_embeds_a_repeated_query_once(held: Engine) -> None:
    held.add("the backup job runs nightly at two")
    held.search("backup job")
    held.search("backup job")
    assert (held.queries.hits, held.queries.misses) == (1, 1)


def test_memos_search_is_audited_through_the_sdk(home: Path, clock: FixedClock) -> None:
    from runtime.sdk import MemOS

    with MemOS(home, principal="agent-1", embedder=HashEmbedder(), clock=clock) as mem:
        m = mem.add("the backup job runs nightly at two")
        mem.search("backup job")
        assert mem.verify_audit() is None
        (entry,) = mem.audit(action="search")
        assert entry.detail["memories"] == [m.id]
        assert [v.version for v in mem.history(m.id)] == [1]


def test_a_crash_loses_only_the_queued_uses(home: Path, clock: FixedClock) -> None:
    """As documented in runtime.engine.usage: written batches stay, the queue is lost."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from runtime.engine.embedding import HashEmbedder
        from runtime.engine.engine import Engine
        eng = Engine(Path({str(home)!r}), embedder=HashEmbedder(), maintain_every=None,
                     usage_linger_s={HELD})
        eng.add("the backup job runs nightly at two")
        eng.search("written before the crash")
        eng.flush_usage()
        eng.search("queued at the crash")
        os._exit(0)  # no close, no atexit: as a kill would
        """
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, timeout=120)
    with Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None) as eng:
        queries = [e.detail["query"] for e in eng.audit_log(action="search")]
        assert queries == ["written before the crash"]
        assert eng.store.verify_audit_chain() is None
