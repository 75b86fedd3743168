from __future__ import annotations

import ast
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

import runtime.engine
from protocol import AccessPolicy, MemoryType
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine, fts_query
from runtime.engine.lifecycle import State
from runtime.engine.maintenance import MaintenancePolicy
from runtime.engine.types import Filters
from runtime.errors import AccessDeniedError, EngineError, LifecycleError, NotFoundError
from runtime.tests.helpers import FixedClock


def test_search_finds_by_meaning_and_keyword(engine: Engine) -> None:
    a = engine.add("The borrow checker prevents data races in Rust", tags=("rust",))
    engine.add("Python's GIL serialises bytecode execution", tags=("python",))
    hits = engine.search("rust borrow checker")
    assert hits[0].memory.id == a.id
    assert hits[0].semantic_rank == 1
    assert hits[0].keyword_rank == 1


def test_semantic_matches_below_the_relevance_floor_are_not_hits(engine: Engine) -> None:
    tea = engine.add("alice likes green tea in the morning")
    engine.add("the capital of france is paris")
    floor = engine.embedder.relevance_floor
    assert floor > 0
    assert engine.search("quantum chromodynamics lecture", record=False) == []
    closest = engine.search("quantum chromodynamics lecture", record=False, min_similarity=0.0)
    assert len(closest) == 2 and all((h.similarity or 0.0) < floor for h in closest)
    # A keyword match is kept even when its meaning is far off.
    (hit,) = engine.search("morning", record=False, min_similarity=0.99)
    assert hit.memory.id == tea.id and hit.keyword_rank == 1 and hit.semantic_rank is None


def test_symbolic_filters_tags_pack_time_and_metadata(engine: Engine, clock: FixedClock) -> None:
    old = engine.add(
        "alpha release notes", tags=("release", "v1"), metadata={"team": "core", "n": 3}
    )
    clock.advance(days=10)
    new = engine.add("alpha beta notes", tags=("release",), metadata={"team": "web"})
    assert [h.memory.id for h in engine.search("", filters=Filters(tags=("v1",)))] == [old.id]
    assert [
        h.memory.id for h in engine.search("alpha", filters=Filters(metadata={"team": "web"}))
    ] == [new.id]
    assert [h.memory.id for h in engine.search("alpha", filters=Filters(metadata={"n": 3}))] == [
        old.id
    ]
    after = engine.search("notes", filters=Filters(created_after=clock.now - timedelta(days=1)))
    assert [h.memory.id for h in after] == [new.id]
    assert engine.search("notes", filters=Filters(pack="acme/none")) == []


def test_search_updates_access_counts_and_activates(engine: Engine, clock: FixedClock) -> None:
    m = engine.add("remember the milk")
    assert m.state is State.GENERATED
    clock.advance(hours=1)
    engine.search("milk")
    engine.search("milk")
    now = engine.get(m.id, record=False)
    assert now.access_count == 2
    assert now.last_accessed_at == clock.now
    assert now.state is State.ACTIVATED


def test_search_without_record_changes_nothing(engine: Engine) -> None:
    m = engine.add("quiet read")
    engine.search("quiet", record=False)
    assert engine.get(m.id, record=False).access_count == 0


def test_access_policy_enforced_for_principal(engine: Engine) -> None:
    secret = engine.add("the vault code is 1234", access=AccessPolicy("private", ("bob",)))
    assert engine.search("vault code", principal="carol") == []
    assert engine.search("vault code", principal=None) == []
    assert [h.memory.id for h in engine.search("vault code", principal="bob")] == [secret.id]
    with pytest.raises(AccessDeniedError) as info:
        engine.get(secret.id, principal="carol")
    assert info.value.code == "access.denied"
    denied = engine.audit_log(action="access_denied")
    assert denied[-1].actor == "carol"
    assert denied[-1].target == secret.id


def test_every_change_is_a_version_and_rollback_restores(engine: Engine, clock: FixedClock) -> None:
    m = engine.add("v1 text", tags=("a",))
    clock.advance(minutes=1)
    engine.update(m.id, text="v2 text", tags=("b",), actor="alice")
    clock.advance(minutes=1)
    engine.transition(m.id, "archive", actor="ops")
    versions = engine.history(m.id)
    assert [(v.version, v.event) for v in versions] == [
        (1, "create"),
        (2, "update"),
        (3, "archive"),
    ]
    restored = engine.rollback(m.id, 1, actor="ops")
    assert restored.text == "v1 text"
    assert restored.tags == ("a",)
    assert restored.state is State.GENERATED
    assert restored.version == 4
    assert engine.history(m.id)[-1].event == "rollback:1"
    # The restored text is searchable again, the rolled-back one is not.
    assert [h.memory.id for h in engine.search("v1", record=False)] == [m.id]


def test_point_in_time_read(engine: Engine, clock: FixedClock) -> None:
    m = engine.add("original")
    t1 = clock.now
    clock.advance(hours=1)
    engine.update(m.id, text="edited")
    assert engine.as_of(m.id, t1).text == "original"
    assert engine.as_of(m.id, clock.now).text == "edited"
    with pytest.raises(NotFoundError) as info:
        engine.as_of(m.id, t1 - timedelta(days=1))
    assert info.value.code == "engine.not_yet"


def test_rollback_to_missing_version(engine: Engine) -> None:
    m = engine.add("x")
    with pytest.raises(NotFoundError) as info:
        engine.rollback(m.id, 9)
    assert info.value.code == "engine.no_such_version"


def test_illegal_transition_leaves_memory_unchanged(engine: Engine) -> None:
    m = engine.add("x")
    with pytest.raises(LifecycleError):
        engine.transition(m.id, "restore")
    assert engine.get(m.id, record=False).version == 1


def test_audit_log_is_append_only_and_hash_chained(engine: Engine) -> None:
    engine.add("x", actor="alice")
    engine.search("x", principal="bob")
    with pytest.raises(sqlite3.DatabaseError):
        engine.store.db.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError):
        engine.store.db.execute("DELETE FROM audit")
    assert engine.store.verify_audit_chain() is None
    engine.store.db.execute("DROP TRIGGER audit_no_update")
    engine.store.db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    assert engine.store.verify_audit_chain() == 1


def test_audit_records_who_read_what(engine: Engine) -> None:
    m = engine.add("meeting at noon")
    engine.search("meeting", principal="agent-7")
    reads = engine.audit_log(actor="agent-7", action="search")
    assert reads[-1].detail["memories"] == [m.id]
    assert engine.audit_log(target=m.id)


def test_expiry_policy(engine: Engine, clock: FixedClock) -> None:
    m = engine.add("temporary", expires_at=clock.now + timedelta(hours=1))
    keep = engine.add("permanent")
    assert engine.search("temporary", record=False)
    clock.advance(hours=2)
    assert m.id not in [
        h.memory.id for h in engine.search("temporary", record=False)
    ]  # hidden once expired
    report = engine.maintain(actor="ops")
    assert report.expired == [m.id]
    assert engine.get(m.id, record=False).state is State.EXPIRED
    assert engine.get(keep.id, record=False).state is State.GENERATED


def test_archive_policy_for_unused(home: Path, clock: FixedClock) -> None:
    eng = Engine(
        home,
        embedder=HashEmbedder(),
        clock=clock,
        maintain_every=None,
        maintenance_policy=MaintenancePolicy(archive_after=timedelta(days=30)),
    )
    used = eng.add("used often")
    idle = eng.add("never used")
    clock.advance(days=20)
    eng.search("used often", k=1)
    clock.advance(days=15)
    report = eng.maintain()
    assert report.archived == [idle.id]
    assert eng.get(used.id, record=False).state is State.ACTIVATED
    assert eng.search("never used", record=False, k=5)[0].memory.id != idle.id
    assert eng.search("never used", include_archived=True, record=False)[0].memory.id == idle.id
    eng.close()


def test_merge_duplicates(engine: Engine) -> None:
    a = engine.add("Deploys happen on Tuesdays", priority=0.9, tags=("ops",))
    b = engine.add("deploys   happen on tuesdays", tags=("calendar",))
    c = engine.add("Something else entirely")
    report = engine.maintain()
    assert report.merged == [(b.id, a.id)]
    assert engine.get(b.id, record=False).state is State.MERGED
    assert engine.get(b.id, record=False).merged_into == a.id
    assert set(engine.get(a.id, record=False).tags) == {"ops", "calendar"}
    assert engine.get(c.id, record=False).state is State.GENERATED


def test_maintenance_runs_on_open_when_due(home: Path, clock: FixedClock) -> None:
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    m = eng.add("short lived", expires_at=clock.now + timedelta(minutes=5))
    eng.close()
    clock.advance(hours=1)
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=timedelta(hours=24))
    assert eng.get(m.id, record=False).state is State.EXPIRED
    assert eng.audit_log(action="maintain")[-1].actor == "memos-scheduler"
    eng.close()
    # not due again an hour later
    clock.advance(hours=1)
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=timedelta(hours=24))
    assert len(eng.audit_log(action="maintain")) == 1
    eng.close()


def test_two_engines_share_a_home(home: Path, clock: FixedClock) -> None:
    one = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    two = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    a = one.add("written by one")
    assert [h.memory.id for h in two.search("written by one", record=False)] == [a.id]
    b = two.add("written by two")
    assert {h.memory.id for h in one.search("written", record=False)} == {a.id, b.id}
    one.close()
    two.close()


def test_embedder_mismatch_is_refused(home: Path, clock: FixedClock) -> None:
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    eng.add("x")
    eng.close()
    other = Engine(
        home, embedder=HashEmbedder(model_name="other"), clock=clock, maintain_every=None
    )
    with pytest.raises(Exception) as info:
        other.add("y")
    assert getattr(info.value, "code", "") == "engine.embedder_mismatch"
    other.close()


def test_fts_query_is_always_safe() -> None:
    assert fts_query('NEAR(") OR * "x') == '"near"'
    assert fts_query("!!!") is None


def test_list_memories_with_filters(engine: Engine) -> None:
    a = engine.add("one", metadata={"item.x": 1})
    engine.add("two", metadata={"item.x": 2})
    assert [m.id for m in engine.list_memories(Filters(metadata={"item.x": 1}))] == [a.id]
    engine.transition(a.id, "archive")
    assert [m.id for m in engine.list_memories(Filters(metadata={"item.x": 1}))] == []
    assert [
        m.id for m in engine.list_memories(Filters(metadata={"item.x": 1}), all_states=True)
    ] == [a.id]


def test_compacting_vectors_keeps_search_results(home: Path, clock: FixedClock) -> None:
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    other = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    a = eng.add("first text about gardening")
    b = eng.add("second text about sailing")
    eng.update(a.id, text="tomatoes need sun")
    eng.update(b.id, text="boats need wind")
    before = [h.memory.id for h in other.search("tomatoes sun", record=False)]
    assert eng.vectors.count() == 4
    assert eng.compact_vectors() == {"rows_before": 4, "rows_after": 2}
    assert eng.vectors.count() == 2
    assert len(list((home / "engine").glob("vectors*.f32"))) == 1
    # both this engine and one opened before the compaction still find the right memories
    assert [h.memory.id for h in eng.search("tomatoes sun", record=False)] == before
    assert [h.memory.id for h in other.search("tomatoes sun", record=False)] == before
    assert other.search("boats wind", record=False)[0].memory.id == b.id
    c = other.add("new after compaction: kites")
    assert eng.search("kites", record=False)[0].memory.id == c.id
    assert eng.compact_vectors() == {"rows_before": 3, "rows_after": 3}
    eng.close()
    other.close()


def test_engine_without_an_embedder_reads_but_does_not_embed(home: Path, clock: FixedClock) -> None:
    eng = Engine(home, embedder=HashEmbedder(), clock=clock, maintain_every=None)
    memory = eng.add("kept without a model")
    eng.close()
    bare = Engine(home, clock=clock, maintain_every=None)
    assert bare.get(memory.id, record=False).text == "kept without a model"
    with pytest.raises(EngineError) as info:
        bare.search("kept")
    assert info.value.code == "engine.no_embedder"
    bare.close()


def test_memory_types_are_protocol_memory_types(engine: Engine) -> None:
    memory = engine.add("typed")
    assert memory.memory_type is MemoryType.PLAINTEXT
    assert engine.get(memory.id, record=False).memory_type is MemoryType.PLAINTEXT
    assert memory.to_dict()["memory_type"] == "plaintext"


def test_the_engine_imports_no_model_library() -> None:
    banned = {"torch", "transformers", "sentence_transformers"}
    folder = Path(runtime.engine.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & banned, f"{path.name} imports {names}"
